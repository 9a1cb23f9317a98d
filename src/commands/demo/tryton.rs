//! Running the demo against a real Tryton: the server started by `scripts/setup/tryton.sh`
//! describes itself in `.tryton/env`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The `.tryton/env` file of the checkout (or `TRYTON_ENV`).
fn env_file() -> PathBuf {
    std::env::var_os("TRYTON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".tryton/env"))
}

/// Key/value pairs of `.tryton/env`.
pub fn env() -> Result<BTreeMap<String, String>> {
    let path = env_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is missing: start Tryton first with scripts/setup/tryton.sh",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// The Tryton adapter's configuration from `.tryton/env`.
pub fn config() -> Result<crossdock_erp::tryton::Config> {
    let env = env()?;
    let get = |key: &str| {
        env.get(key)
            .cloned()
            .with_context(|| format!("{key} missing from .tryton/env"))
    };
    let mut warehouses = Vec::new();
    for pair in get("TRYTON_WAREHOUSES")?.split(',') {
        let Some((name, id)) = pair.split_once('=') else {
            bail!("TRYTON_WAREHOUSES entry `{pair}` is not NAME=ID");
        };
        warehouses.push(format!("{{ id = {id}, location = \"{name}\" }}"));
    }
    let text = format!(
        "url = \"{url}\"\ndatabase = \"{db}\"\nuser = \"{user}\"\npassword_file = \"{pw}\"\nwarehouses = [{wh}]\ntaxes = [{tax}]\npayment_method = {pm}\npayment_term = {pt}\n",
        url = get("TRYTON_URL")?,
        db = get("TRYTON_DB")?,
        user = get("TRYTON_USER")?,
        pw = get("TRYTON_PASSWORD_FILE")?,
        wh = warehouses.join(", "),
        tax = get("TRYTON_TAX")?,
        pm = get("TRYTON_PAYMENT_METHOD")?,
        pt = get("TRYTON_PAYMENT_TERM")?,
    );
    toml::from_str(&text).context("building the Tryton adapter configuration")
}

/// Customer and product codes of the seeded Tryton database (from the seed summary the
/// setup script writes).
pub fn codes() -> Result<(Vec<String>, Vec<String>)> {
    let env = env()?;
    let path = env
        .get("TRYTON_SEED")
        .context("TRYTON_SEED missing from .tryton/env")?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let seed: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    let keys = |field: &str| -> Vec<String> {
        seed[field]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    Ok((keys("customers"), keys("products")))
}
