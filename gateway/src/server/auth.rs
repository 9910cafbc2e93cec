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
    /// No keys and `--allow-unauthenticated-remote`: any peer is accepted.
    allow_remote: bool,
}

/// Who a connection is, once the handshake succeeded.
#[derive(Clone, Debug)]
pub struct Identity {
    /// For logs: the API key's name and the client's self-declared name.
    pub name: String,
    pub role: Role,
    /// The configured name of the API key used ("loopback" without keys): the scope of the
    /// connection's idempotency keys. Never what the client says about itself.
    pub scope: String,
}

impl Authenticator {
    /// `allow_remote` only matters without keys (the config refuses a non-loopback listen
    /// address without keys unless it is set).
    pub fn new(keys: Vec<ApiKeyConfig>, allow_remote: bool) -> Self {
        Authenticator { keys, allow_remote }
    }

    pub fn open(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn authenticate(&self, key: &str, peer: SocketAddr) -> Result<Identity, AuthError> {
        if self.keys.is_empty() {
            if !peer.ip().is_loopback() && !self.allow_remote {
                return Err(AuthError::NotLoopback);
            }
            return Ok(Identity { name: "loopback".to_owned(), role: Role::Ops, scope: "loopback".to_owned() });
        }
        // Compare against every key so the time taken does not reveal which one matched.
        let mut found = None;
        for entry in &self.keys {
            let equal: bool = entry.key.as_bytes().ct_eq(key.as_bytes()).into();
            if equal && found.is_none() {
                found = Some(Identity { name: entry.name.clone(), role: entry.role, scope: entry.name.clone() });
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
        // Checks that a key grants its role and scope (its entry's name), that a wrong key is
        // refused, and that without keys only loopback peers get in, unless remote access was
        // explicitly allowed.
        let auth = Authenticator::new(
            vec![ApiKeyConfig { name: "shop".into(), key: "s3cret-s3cret-s3cret".into(), role: Role::Storefront }],
            false,
        );
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let who = auth.authenticate("s3cret-s3cret-s3cret", local).unwrap();
        assert_eq!((who.role, who.scope.as_str()), (Role::Storefront, "shop"));
        assert_eq!(auth.authenticate("nope", local).map(|i| i.role), Err(AuthError::InvalidKey));
        let remote: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let open = Authenticator::new(vec![], false);
        assert!(open.authenticate("", local).is_ok());
        assert_eq!(open.authenticate("", remote).map(|i| i.role), Err(AuthError::NotLoopback));
        let allowed = Authenticator::new(vec![], true);
        assert_eq!(allowed.authenticate("", remote).map(|i| i.role), Ok(Role::Ops));
    }
}
