//! Versioned contracts: the OpenAPI document ([`crate::openapi`]), a JSON Schema per event type
//! in a CloudEvents 1.0 envelope ([`events`]), and the breaking-change check between two
//! versions ([`check`]).
//!
//! [`generate`] produces every contract file as the code defines it; the committed copies live
//! in `contracts/` at the workspace root and a test fails when they differ (regenerate with
//! `UPDATE_CONTRACTS=1 cargo test -p crossdock-api --test contracts`).

pub mod check;
pub mod events;

use std::collections::BTreeMap;
use std::path::Path;

/// Every contract file (path relative to the contracts folder → pretty JSON with a final
/// newline).
pub fn generate() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert(
        "openapi.json".to_owned(),
        pretty(&crate::openapi::document()),
    );
    for name in crossdock_domain::order::Event::NAMES {
        files.insert(
            format!("events/{name}.schema.json"),
            pretty(&events::schema(name)),
        );
    }
    files
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes every contract file under `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (name, text) in generate() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}
