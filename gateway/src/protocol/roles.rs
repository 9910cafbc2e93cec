//! Access control: which opcodes each API-key role may send.

use super::Opcode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Checkout traffic: reserve, confirm, release, read stock.
    Storefront,
    /// Stock and catalog administration (and everything a storefront may do).
    Ops,
    /// Log reading.
    Reader,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected storefront, ops or reader)")]
pub struct RoleParseError(pub String);

impl std::str::FromStr for Role {
    type Err = RoleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "storefront" => Ok(Role::Storefront),
            "ops" => Ok(Role::Ops),
            "reader" => Ok(Role::Reader),
            other => Err(RoleParseError(other.to_owned())),
        }
    }
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Storefront => "storefront",
            Role::Ops => "ops",
            Role::Reader => "reader",
        }
    }

    pub fn allows(self, opcode: Opcode) -> bool {
        use Opcode::*;
        let storefront = matches!(
            opcode,
            Hello | Ping | Reserve | ReserveBatch | Confirm | Release | PayBalance | GetStock | GetReservation | LookupSkus | ExportStock | GetCampaign
                // Orders: a storefront imports, reads and cancels its orders; the rest is ops.
                | OrderImport | OrderGet | OrderList | OrderCancel
        );
        match self {
            Role::Storefront => storefront,
            Role::Ops => storefront || opcode != Response,
            Role::Reader => matches!(opcode, Hello | Ping | Subscribe | ReplicaAck),
        }
    }
}
