//! The handshake's credential check. Keys are compared in constant time and never logged.

use std::net::SocketAddr;

use subtle::ConstantTimeEq;

use crate::config::ApiKeyConfig;
use oms_proto::Role;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid API key")]
    InvalidKey,
    #[error("no API keys are configured, so only loopback clients are accepted")]
    NotLoopback,
}

pub struct Authenticator {
    keys: Vec<ApiKeyConfig>,
}

/// Who a connection is, once the handshake succeeded.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

impl Authenticator {
    pub fn new(keys: Vec<ApiKeyConfig>) -> Self {
        Authenticator { keys }
    }

    pub fn open(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn authenticate(&self, key: &str, peer: SocketAddr) -> Result<Identity, AuthError> {
        if self.keys.is_empty() {
            if !peer.ip().is_loopback() {
                return Err(AuthError::NotLoopback);
            }
            return Ok(Identity { name: "loopback".to_owned(), role: Role::Ops });
        }
        // Compare against every key so the time taken does not reveal which one matched.
        let mut found = None;
        for entry in &self.keys {
            let equal: bool = entry.key.as_bytes().ct_eq(key.as_bytes()).into();
            if equal && found.is_none() {
                found = Some(Identity { name: entry.name.clone(), role: entry.role });
            }
        }
        found.ok_or(AuthError::InvalidKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_grant_their_role_and_open_mode_is_loopback_only() {
        let auth = Authenticator::new(vec![ApiKeyConfig {
            name: "shop".into(),
            key: "s3cret".into(),
            role: Role::Storefront,
        }]);
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(auth.authenticate("s3cret", local).map(|i| i.role), Ok(Role::Storefront));
        assert_eq!(auth.authenticate("nope", local).map(|i| i.role), Err(AuthError::InvalidKey));
        let open = Authenticator::new(vec![]);
        assert!(open.authenticate("", local).is_ok());
        assert_eq!(open.authenticate("", "10.0.0.1:1".parse().unwrap()).map(|i| i.role), Err(AuthError::NotLoopback));
    }
}
