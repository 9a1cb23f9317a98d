//! Parsing `postgres://…` locations: the store's own query parameters (`schema`,
//! `pool_size`) are taken out before the URL goes to the driver.

use crate::error::{Error, Result};

/// Connections in the pool unless `pool_size` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// A parsed PostgreSQL location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The URL without the store's parameters.
    pub(crate) url: String,
    /// Schema holding the tables (`None`: the server's default search path).
    pub(crate) schema: Option<String>,
    /// Pool size.
    pub(crate) pool_size: u32,
}

/// Whether `name` is a plain identifier usable as a schema name.
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// Splits the store's parameters off `location`.
pub(crate) fn parse(location: &str) -> Result<Location> {
    let (base, query) = match location.split_once('?') {
        Some((base, query)) => (base, query),
        None => (location, ""),
    };
    let mut schema = None;
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", value)) => {
                if !valid_schema(value) {
                    return Err(Error::Invalid(format!(
                        "schema {value:?} must be letters, digits and underscores (at most 63), \
                         not starting with a digit"
                    )));
                }
                schema = Some(value.to_owned());
            }
            Some(("pool_size", value)) => {
                pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        Error::Invalid(format!("pool_size {value:?} must be between 1 and 1000"))
                    })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Location {
        url,
        schema,
        pool_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_parameters_are_taken_out() {
        let parsed = parse(
            "postgres://u@h:5432/db?sslmode=disable&schema=hub_1&pool_size=4&application_name=x",
        )
        .unwrap();
        assert_eq!(
            parsed,
            Location {
                url: "postgres://u@h:5432/db?sslmode=disable&application_name=x".into(),
                schema: Some("hub_1".into()),
                pool_size: 4,
            }
        );
        let plain = parse("postgres://u@h/db").unwrap();
        assert_eq!(
            (plain.url.as_str(), plain.schema, plain.pool_size),
            ("postgres://u@h/db", None, DEFAULT_POOL_SIZE)
        );
        assert_eq!(
            parse("postgres://h/db?schema=s").unwrap().url,
            "postgres://h/db"
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        for location in [
            "postgres://h/db?schema=1abc",
            "postgres://h/db?schema=a;drop",
            "postgres://h/db?schema=",
            "postgres://h/db?schema=a%20b",
            "postgres://h/db?pool_size=0",
            "postgres://h/db?pool_size=many",
        ] {
            let err = parse(location).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{location}");
        }
    }
}
