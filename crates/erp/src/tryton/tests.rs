//! Unit tests: value encoding, error mapping, cursors and configuration parsing. The
//! client and adapter against a server live in `tests/tryton.rs`.

use std::sync::Arc;
use std::time::Duration;

use crossdock_ports::{Failure, FailureClass};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::macros::{date, datetime};

use super::adapter::feed_cursor_roundtrip;
use super::client::parse_error;
use super::config::Config;
use super::error::{Error, ErrorKind};
use super::value::{self, Record};

fn record(fields: Value) -> Record {
    let Value::Object(map) = fields else {
        panic!("test record must be an object")
    };
    Record::new(Arc::from("model.sale.sale.read"), map)
}

#[test]
fn decimals_round_trip_through_tryton_encoding() {
    let price: Decimal = "19.90".parse().unwrap();
    let encoded = value::decimal(price);
    assert_eq!(encoded, json!({"__class__": "Decimal", "decimal": "19.90"}));
    assert_eq!(value::parse_decimal(&encoded), Some(price));
    // Plain numbers and strings are accepted on the way in, without float drift.
    assert_eq!(
        value::parse_decimal(&json!(0.1)),
        Some("0.1".parse().unwrap())
    );
    assert_eq!(
        value::parse_decimal(&json!("-22.00")),
        Some("-22.00".parse().unwrap())
    );
    assert_eq!(
        value::parse_decimal(&json!({"__class__": "Decimal", "decimal": "x"})),
        None
    );
    assert_eq!(value::parse_decimal(&json!({"__class__": "date"})), None);
}

#[test]
fn dates_and_datetimes_use_tagged_objects_in_utc() {
    let day = date!(2026 - 11 - 26);
    let encoded = value::date(day);
    assert_eq!(
        encoded,
        json!({"__class__": "date", "year": 2026, "month": 11, "day": 26})
    );
    assert_eq!(value::parse_date(&encoded), Some(day));

    let instant = datetime!(2026-11-27 03:11:19.274602 UTC);
    let encoded = value::datetime(instant);
    assert_eq!(encoded["microsecond"], json!(274_602));
    assert_eq!(value::parse_datetime(&encoded), Some(instant));
    // A non-UTC instant is sent as its UTC wall time.
    let shifted = datetime!(2026-11-27 05:11:19.274602 +02:00);
    assert_eq!(value::datetime(shifted), encoded);
    assert_eq!(
        value::parse_datetime(&json!({"__class__": "datetime", "year": 2026})),
        None
    );
}

#[test]
fn booleans_accept_sqlite_integers() {
    assert_eq!(value::parse_bool(&json!(1)), Some(true));
    assert_eq!(value::parse_bool(&json!(0)), Some(false));
    assert_eq!(value::parse_bool(&json!(false)), Some(false));
    assert_eq!(value::parse_bool(&json!(2)), None);
    let r = record(json!({"id": 3, "active": 1, "partially_assigned": null}));
    assert!(r.bool("active").unwrap());
    assert!(!r.bool("partially_assigned").unwrap());
}

#[test]
fn quantities_must_be_whole_units() {
    assert_eq!(value::whole_units(6.0), Some(6));
    assert_eq!(value::whole_units(-2.0), Some(-2));
    assert_eq!(value::whole_units(2.5), None);
    assert_eq!(value::whole_units(f64::NAN), None);
    let r = record(json!({"id": 5, "quantity": 1.5}));
    let error = r.units("quantity").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed);
    assert!(error.to_string().contains("`quantity`"), "{error}");
}

#[test]
fn record_errors_name_the_method_field_and_value() {
    let r = record(json!({"id": 12, "state": 42, "lines": [1, "x"]}));
    let error = r.str("state").unwrap_err();
    assert_eq!(
        error.to_string(),
        "model.sale.sale.read: malformed answer: record 12: field `state` should be text, got 42"
    );
    let missing = r.decimal("total_amount").unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("field `total_amount` is missing"),
        "{missing}"
    );
    assert_eq!(r.ids("lines").unwrap_err().kind(), ErrorKind::Malformed);
    let failure = Failure::from(error);
    assert_eq!(failure.class, FailureClass::Unknown);
    assert_eq!(failure.code.as_deref(), Some("MalformedResponse"));
}

#[test]
fn references_split_into_model_and_id() {
    assert_eq!(
        value::parse_reference("sale.line,42"),
        Some(("sale.line", 42))
    );
    assert_eq!(value::parse_reference("sale.line,"), None);
    assert_eq!(value::parse_reference(",3"), None);
    assert_eq!(value::reference("sale.sale", 7), "sale.sale,7");
    let r = record(json!({"id": 1, "origin": "stock.move,54", "other": 3}));
    assert_eq!(
        r.opt_reference("origin").unwrap(),
        Some(("stock.move".to_owned(), 54))
    );
    assert!(r.opt_reference("other").is_err());
}

#[test]
fn tryton_errors_map_to_failure_classes() {
    let method = "model.sale.sale.confirm";
    let user = parse_error(
        method,
        &json!([
            "UserError",
            [
                "The party \"Tight Credit Boutique\" will exceed their $100.00 credit limit by $150.00.",
                "",
                null
            ]
        ]),
    );
    assert_eq!(user.kind(), ErrorKind::User);
    let failure = Failure::from(user);
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("UserError"));
    assert!(
        failure
            .message
            .starts_with("The party \"Tight Credit Boutique\"")
    );

    let warning = parse_error(
        method,
        &json!(["UserWarning", ["abc.credit_limit_amount", "Over limit", ""]]),
    );
    assert!(matches!(&warning, Error::Warning { name, .. } if name == "abc.credit_limit_amount"));
    assert_eq!(warning.failure_class(), FailureClass::Permanent);

    let conflict = parse_error(
        method,
        &json!([
            "ConcurrencyException",
            "Records were modified in the meanwhile"
        ]),
    );
    assert_eq!(conflict.failure_class(), FailureClass::Conflict);

    let bug = parse_error(
        method,
        &json!(["'nosuchfield'", "Traceback ...\nKeyError: 'nosuchfield'\n"]),
    );
    assert_eq!(bug.kind(), ErrorKind::Server);
    assert_eq!(bug.failure_class(), FailureClass::Permanent);
    assert!(bug.to_string().contains("KeyError"), "{bug}");

    let busy = parse_error(method, &json!(["OperationalError", "database is locked"]));
    assert_eq!(busy.failure_class(), FailureClass::Transient);

    let shapeless = parse_error(method, &json!({"message": "boom"}));
    assert_eq!(shapeless.failure_class(), FailureClass::Unknown);
}

#[test]
fn http_statuses_map_to_failure_classes() {
    let http = |status, retry_after| Error::Http {
        method: "model.sale.sale.search".to_owned(),
        status,
        retry_after,
        body: String::new(),
    };
    assert_eq!(http(503, None).failure_class(), FailureClass::Transient);
    assert_eq!(http(500, None).failure_class(), FailureClass::Transient);
    assert_eq!(
        http(429, Some(Duration::from_secs(7))).failure_class(),
        FailureClass::Throttled {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(http(403, None).failure_class(), FailureClass::Permanent);
    assert_eq!(http(422, None).kind(), ErrorKind::Rejected);
    let timeout = Error::Transport {
        method: "m".to_owned(),
        timeout: true,
        message: "no answer".to_owned(),
    };
    assert_eq!(timeout.failure_class(), FailureClass::Transient);
    assert_eq!(timeout.code(), "Timeout");
}

#[test]
fn change_cursors_round_trip_and_reject_garbage() {
    let (text, again) = feed_cursor_roundtrip(
        1_764_213_079_274_602,
        &["so12@1764213079274602", "sh3@1764213079000000"],
    );
    assert_eq!(text, again);
    assert!(text.starts_with("v1;1764213079274602;"));
    for bad in ["", "v2;1;", "v1;abc;", "v1;1;so1", "v1;1;so1@x"] {
        assert!(
            super::adapter::decode_cursor(bad).is_err(),
            "cursor {bad:?} should be refused"
        );
    }
}

#[test]
fn config_reads_the_env_file_written_by_the_setup_script() {
    let text = "TRYTON_URL=http://127.0.0.1:8000\nTRYTON_DB=crossdock\nTRYTON_USER=crossdock\n\
                TRYTON_PASSWORD=secret\nTRYTON_PASSWORD_FILE=/tmp/pw\nTRYTON_WAREHOUSES=WH=5,WH2=13\n\
                TRYTON_TAX=1\nTRYTON_PAYMENT_METHOD=1\n";
    let config = Config::from_env_text(text).unwrap();
    assert_eq!(config.database, "crossdock");
    assert_eq!(config.warehouses.len(), 2);
    assert_eq!(config.warehouses[1].location, "WH2");
    assert_eq!(config.warehouses[1].id, 13);
    assert_eq!(config.taxes, vec![1]);
    assert!(config.validate().is_ok());

    let broken = text.replace("WH2=13", "WH2=x");
    let error = Config::from_env_text(&broken).unwrap_err();
    assert!(error.to_string().contains("TRYTON_WAREHOUSES"), "{error}");
    let missing = text.replace("TRYTON_DB=crossdock\n", "");
    assert!(
        Config::from_env_text(&missing)
            .unwrap_err()
            .to_string()
            .contains("TRYTON_DB")
    );
}

#[test]
fn config_validation_lists_every_problem() {
    let mut config = Config::from_env_text(
        "TRYTON_URL=ftp://x\nTRYTON_DB=a/b\nTRYTON_USER=u\nTRYTON_PASSWORD_FILE=/p\n\
         TRYTON_WAREHOUSES=WH=5,WH=5\nTRYTON_PAYMENT_METHOD=1\n",
    )
    .unwrap();
    config.timeout_secs = 0;
    let problems = config.validate().unwrap_err();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(config.client_config().is_err());
}

#[test]
fn secrets_do_not_leak_into_debug_output() {
    let secret = super::Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    assert_eq!(secret.expose(), "hunter2");
}
