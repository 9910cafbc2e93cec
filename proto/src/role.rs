//! Access control: which opcodes each API-key role may send (docs/PROTOCOL.md section 3).

use crate::Opcode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Checkout traffic: reserve, confirm, release, read stock; import, read and cancel orders.
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

    /// The tag in `hello_ok`.
    pub fn tag(self) -> u8 {
        match self {
            Role::Storefront => 1,
            Role::Ops => 2,
            Role::Reader => 3,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Role> {
        match tag {
            1 => Some(Role::Storefront),
            2 => Some(Role::Ops),
            3 => Some(Role::Reader),
            _ => None,
        }
    }

    pub fn allows(self, opcode: Opcode) -> bool {
        use Opcode::*;
        let storefront = matches!(
            opcode,
            Hello | Ping | Reserve | ReserveBatch | Confirm | Release | PayBalance | GetStock | GetReservation | LookupSkus | ExportStock | GetCampaign
                // Orders: a storefront imports, reads and cancels its orders; the rest is ops.
                | OrderImport | OrderGet | OrderList | OrderPage | OrderCancel
        );
        match self {
            Role::Storefront => storefront,
            Role::Ops => true,
            Role::Reader => matches!(opcode, Hello | Ping | Subscribe | ReplicaAck),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
