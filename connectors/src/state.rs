//! A shop's sync state on disk (`<data_dir>/shops/<shop>.json`): where the order pull got to,
//! and the stock values the platform acknowledged.
//!
//! It is a cache of the platform's side, never the truth about omsd's: what the platform is owed
//! is always recomputed from omsd's state at start (every mapped SKU's sellable quantity). After
//! a clean stop (`clean: true`, written last at shutdown) only the SKUs whose value differs from
//! the acknowledged one are pushed; after a crash the acknowledged values may be stale in either
//! direction, so every SKU is pushed again (a full-quantity set: repeating it is harmless).
//! The file is replaced atomically (write a temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File format version.
pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    pub version: u32,
    /// Written by a clean shutdown: `acked` is exactly what the platform was last told.
    pub clean: bool,
    /// Orders modified before this (unix ms) were pulled; `None`: never pulled.
    pub pulled_until_ms: Option<i64>,
    /// SKU code -> (quantity, version) the platform acknowledged.
    pub acked: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot write shop state {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Where a shop's state lives.
pub fn state_path(dir: &Path, shop: &str) -> PathBuf {
    let safe: String =
        shop.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir.join(format!("{safe}.json"))
}

/// Read a shop's state; a missing, unreadable or unknown-version file gives the empty state
/// (everything is pushed and the first pull looks back `pull_lookback`), with a warning.
pub fn load(path: &Path) -> SyncState {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SyncState::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read shop state; pushing every SKU");
            return SyncState::default();
        }
    };
    match serde_json::from_str::<SyncState>(&text) {
        Ok(state) if state.version == STATE_VERSION => state,
        Ok(state) => {
            tracing::warn!(path = %path.display(), version = state.version, "unknown shop state version; ignoring it");
            SyncState::default()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "damaged shop state; ignoring it");
            SyncState::default()
        }
    }
}

/// Replace the file atomically.
pub fn save(path: &Path, state: &SyncState) -> Result<(), StateError> {
    let error = |source| StateError::Write { path: path.to_owned(), source };
    let mut state = state.clone();
    state.version = STATE_VERSION;
    let bytes = serde_json::to_vec_pretty(&state).map_err(|e| error(std::io::Error::other(e)))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(error)?;
    file.write_all(&bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&tmp, path).map_err(error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_bad_files_read_as_empty() {
        // Saved state reads back equal; garbage or a future version reads as the empty state.
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "tb/1");
        assert!(path.ends_with("tb_1.json"));
        assert_eq!(load(&path), SyncState::default());
        let mut state = SyncState { clean: true, pulled_until_ms: Some(42), ..SyncState::default() };
        state.acked.insert("MUG".into(), (5, 9));
        save(&path, &state).unwrap();
        assert_eq!(load(&path), SyncState { version: STATE_VERSION, ..state });
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load(&path), SyncState::default());
        std::fs::write(&path, br#"{"version": 99, "clean": true, "pulled_until_ms": null, "acked": {}}"#).unwrap();
        assert_eq!(load(&path), SyncState::default());
    }
}
