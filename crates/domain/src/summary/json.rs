//! The summary's JSON text, written directly.
//!
//! The hub renders an order's summary with every lifecycle step (it is the stored read
//! model). Through `serde_json` that cost ≈ 20–30k instructions a summary, the largest
//! single cost of a step outside the store: each of its ≈ 110 keys and string values goes
//! through the escaping loop byte by byte, each time through the `time` crate's general
//! formatter, each amount through a temporary string. Here keys are literals, times and
//! numbers are written from their digits, and a string is copied whole unless it holds a
//! character JSON escapes. The text is the same as `serde_json::to_string` gives (a
//! property test compares them); a time this writer does not handle (not UTC, or a year
//! outside 0–9999) falls back to `serde_json`.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::{InvoiceSummary, LineSummary, OrderSummary, ReturnSummary, ShipmentSummary};
use crate::ids::{ExternalRefs, LineNo};
use crate::order::{LineQuantities, StageTimes};

impl OrderSummary {
    /// The summary as compact JSON: the same text as `serde_json::to_string(self)`, written
    /// several times faster.
    ///
    /// # Errors
    /// As `serde_json::to_string` (a time it cannot render as RFC 3339).
    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut out = Out(Vec::with_capacity(1536));
        match out.summary(self) {
            // Every piece written is UTF-8: this check never fails.
            Some(()) => String::from_utf8(out.0).or_else(|_| serde_json::to_string(self)),
            None => serde_json::to_string(self),
        }
    }
}

/// The text being written (bytes of UTF-8: every piece written is). Methods that return
/// `Option` give `None` for a value only `serde_json` renders (see the module
/// documentation).
struct Out(Vec<u8>);

impl Out {
    fn summary(&mut self, s: &OrderSummary) -> Option<()> {
        self.raw("{\"id\":");
        self.str(s.id.as_str());
        self.raw(",\"refs\":");
        self.refs(&s.refs);
        self.raw(",\"account\":");
        self.str(s.account.as_str());
        self.raw(",\"channel\":\"");
        // The serde name is the snake-case variant name: the display name in lower case.
        for byte in s.channel.as_str().bytes() {
            self.0.push(byte.to_ascii_lowercase());
        }
        self.raw("\",\"currency\":");
        self.str(s.currency.code());
        self.raw(",\"status\":");
        self.str(s.status.name());
        self.raw(",\"total\":");
        self.decimal(&s.total);
        self.raw(",\"invoiced\":");
        self.decimal(&s.invoiced);
        self.raw(",\"paid\":");
        self.decimal(&s.paid);
        self.raw(",\"credited\":");
        self.decimal(&s.credited);
        self.raw(",\"refunded\":");
        self.decimal(&s.refunded);
        self.raw(",\"lines\":");
        self.list(&s.lines, Self::line);
        self.raw(",\"shipments\":");
        self.list(&s.shipments, Self::shipment);
        self.raw(",\"invoices\":");
        self.list(&s.invoices, Self::invoice);
        self.raw(",\"returns\":");
        self.list(&s.returns, Self::return_summary);
        self.raw(",\"reason\":");
        self.opt_str(s.reason.as_deref());
        self.raw(",\"times\":");
        self.times(&s.times)?;
        self.raw("}");
        Some(())
    }

    fn refs(&mut self, r: &ExternalRefs) {
        // Absent ids are left out (`skip_serializing_if`).
        let mut first = true;
        for (key, value) in [
            ("\"sf_id\":", &r.sf_id),
            ("\"sf_number\":", &r.sf_number),
            ("\"erp_ref\":", &r.erp_ref),
        ] {
            if let Some(value) = value {
                self.raw(if first { "{" } else { "," });
                first = false;
                self.raw(key);
                self.str(value);
            }
        }
        self.raw(if first { "{}" } else { "}" });
    }

    fn line(&mut self, l: &LineSummary) {
        self.raw("{\"line\":");
        self.number(l.line.0);
        self.raw(",\"sku\":");
        self.str(l.sku.as_str());
        self.raw(",\"sf_id\":");
        self.opt_str(l.sf_id.as_deref());
        self.raw(",\"unit_price\":");
        self.decimal(&l.unit_price);
        self.raw(",\"quantities\":");
        self.quantities(&l.quantities);
        self.raw("}");
    }

    fn quantities(&mut self, q: &LineQuantities) {
        for (key, n) in [
            ("{\"ordered\":", q.ordered),
            (",\"allocated\":", q.allocated),
            (",\"backordered\":", q.backordered),
            (",\"picked\":", q.picked),
            (",\"shipped\":", q.shipped),
            (",\"delivered\":", q.delivered),
            (",\"invoiced\":", q.invoiced),
            (",\"returned\":", q.returned),
        ] {
            self.raw(key);
            self.number(n);
        }
        self.raw("}");
    }

    fn shipment(&mut self, s: &ShipmentSummary) {
        self.raw("{\"id\":");
        self.str(s.id.as_str());
        self.raw(",\"location\":");
        self.opt_str(s.location.as_ref().map(|l| l.as_str()));
        self.raw(",\"milestone\":");
        self.opt_str(s.milestone.map(|m| m.as_str()));
        self.raw(",\"carrier\":");
        self.opt_str(s.carrier.as_deref());
        self.raw(",\"tracking\":");
        self.opt_str(s.tracking.as_deref());
        self.raw(",\"lines\":");
        self.units(&s.lines);
        self.raw("}");
    }

    fn invoice(&mut self, i: &InvoiceSummary) {
        self.raw("{\"id\":");
        self.str(i.id.as_str());
        self.raw(",\"number\":");
        self.str(&i.number);
        self.raw(",\"total\":");
        self.decimal(&i.total);
        self.raw("}");
    }

    fn return_summary(&mut self, r: &ReturnSummary) {
        self.raw("{\"rma\":");
        self.str(r.rma.as_str());
        self.raw(",\"case\":");
        self.refs(&r.case);
        self.raw(",\"status\":");
        self.str(r.status.as_str());
        self.raw(",\"erp_ref\":");
        self.opt_str(r.erp_ref.as_deref());
        self.raw(",\"lines\":");
        self.units(&r.lines);
        self.raw(",\"credit_memos\":");
        self.list(&r.credit_memos, |out, number| out.str(number));
        self.raw(",\"credited\":");
        self.decimal(&r.credited);
        self.raw(",\"refunded\":");
        self.decimal(&r.refunded);
        self.raw(",\"refusal\":");
        self.opt_str(r.refusal.as_deref());
        self.raw("}");
    }

    fn times(&mut self, t: &StageTimes) -> Option<()> {
        for (key, at) in [
            ("{\"captured\":", t.captured),
            (",\"validated\":", t.validated),
            (",\"booked\":", t.booked),
            (",\"shipped\":", t.shipped),
            (",\"delivered\":", t.delivered),
            (",\"invoiced\":", t.invoiced),
            (",\"paid\":", t.paid),
            (",\"closed\":", t.closed),
            (",\"cancelled\":", t.cancelled),
        ] {
            self.raw(key);
            match at {
                Some(at) => self.time(at)?,
                None => self.raw("null"),
            }
        }
        self.raw("}");
        Some(())
    }

    /// `[[line, units], …]`.
    fn units(&mut self, lines: &[(LineNo, u32)]) {
        self.raw("[");
        for (n, (line, units)) in lines.iter().enumerate() {
            self.raw(if n == 0 { "[" } else { ",[" });
            self.number(line.0);
            self.raw(",");
            self.number(*units);
            self.raw("]");
        }
        self.raw("]");
    }

    fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.raw("[");
        for (n, value) in items.iter().enumerate() {
            if n > 0 {
                self.raw(",");
            }
            item(self, value);
        }
        self.raw("]");
    }

    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    fn opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.str(value),
            None => self.raw("null"),
        }
    }

    /// A JSON string, escaped as `serde_json` escapes it (control characters, quote and
    /// backslash; everything else, non-ASCII included, as is).
    fn str(&mut self, value: &str) {
        self.0.push(b'"');
        let bytes = value.as_bytes();
        if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.extend_from_slice(bytes);
        } else {
            for &byte in bytes {
                let escape: &[u8] = match byte {
                    b'"' => b"\\\"",
                    b'\\' => b"\\\\",
                    0x08 => b"\\b",
                    b'\t' => b"\\t",
                    b'\n' => b"\\n",
                    0x0C => b"\\f",
                    b'\r' => b"\\r",
                    0x00..=0x1F => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        self.0.extend_from_slice(b"\\u00");
                        self.0.push(HEX[usize::from(byte >> 4)]);
                        self.0.push(HEX[usize::from(byte & 0xF)]);
                        continue;
                    }
                    _ => {
                        self.0.push(byte);
                        continue;
                    }
                };
                self.0.extend_from_slice(escape);
            }
        }
        self.0.push(b'"');
    }

    /// An amount as a JSON string (`rust_decimal`'s `serde-with-str` form: its `Display`,
    /// all `scale` digits after the point, trailing zeros kept).
    fn decimal(&mut self, value: &Decimal) {
        self.0.push(b'"');
        let mantissa = value.mantissa();
        let scale = value.scale() as usize;
        match u64::try_from(mantissa.unsigned_abs()) {
            Ok(mut magnitude) if magnitude != 0 && scale < 20 => {
                if mantissa < 0 {
                    self.0.push(b'-');
                }
                // At least one digit before the point: "0.05", not ".05".
                let mut buffer = [b'0'; 21];
                let mut start = buffer.len();
                while magnitude > 0 {
                    start -= 1;
                    buffer[start] = b'0' + (magnitude % 10) as u8;
                    magnitude /= 10;
                }
                let point = buffer.len() - scale;
                let start = start.min(point - 1);
                self.0.extend_from_slice(&buffer[start..point]);
                if scale > 0 {
                    self.0.push(b'.');
                    self.0.extend_from_slice(&buffer[point..]);
                }
            }
            // Zero (which may carry a sign or a scale) and amounts beyond 64 bits.
            _ => self.raw(&value.to_string()),
        }
        self.0.push(b'"');
    }

    /// `n` in decimal.
    fn number(&mut self, mut n: u32) {
        if n < 100 {
            self.two_digits(n, n >= 10);
            return;
        }
        let mut buffer = [0u8; 10];
        let mut start = buffer.len();
        while n > 0 {
            start -= 1;
            buffer[start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.0.extend_from_slice(&buffer[start..]);
    }

    /// `n` (below 100) in two digits, or in one if `!both`.
    fn two_digits(&mut self, n: u32, both: bool) {
        let at = (n as usize % 100) * 2;
        let pair = &PAIRS[at..at + 2];
        self.0
            .extend_from_slice(if both { pair } else { &pair[1..] });
    }

    /// An RFC 3339 time as the `time` crate writes it (seconds, then the nanoseconds
    /// without trailing zeros when not zero), for UTC times of years 0–9999.
    fn time(&mut self, at: OffsetDateTime) -> Option<()> {
        let (year, month, day) = at.to_calendar_date();
        if !at.offset().is_utc() || !(0..10_000).contains(&year) {
            return None;
        }
        let (hour, minute, second, nanos) = at.to_hms_nano();
        let year = year.unsigned_abs();
        self.0.push(b'"');
        self.two_digits(year / 100, true);
        self.two_digits(year % 100, true);
        self.0.push(b'-');
        self.two_digits(u32::from(u8::from(month)), true);
        self.0.push(b'-');
        self.two_digits(u32::from(day), true);
        self.0.push(b'T');
        self.two_digits(u32::from(hour), true);
        self.0.push(b':');
        self.two_digits(u32::from(minute), true);
        self.0.push(b':');
        self.two_digits(u32::from(second), true);
        if nanos != 0 {
            let mut digits = [0u8; 9];
            let mut rest = nanos;
            for at in (0..9).rev() {
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let end = digits
                .iter()
                .rposition(|&d| d != b'0')
                .map_or(0, |last| last + 1);
            self.0.push(b'.');
            self.0.extend_from_slice(&digits[..end]);
        }
        self.raw("Z\"");
        Some(())
    }
}

/// "00", "01", … "99".
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use time::{OffsetDateTime, UtcOffset};

    use super::super::{InvoiceSummary, LineSummary, OrderSummary, ReturnSummary, ShipmentSummary};
    use crate::ids::{
        AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, RmaId, ShipmentId, Sku,
    };
    use crate::order::{Channel, LineQuantities, Milestone, OrderStatus, ReturnStatus, StageTimes};

    fn refs(n: usize) -> ExternalRefs {
        let id = |bit: usize, text: &str| (n & bit != 0).then(|| text.to_owned());
        ExternalRefs {
            sf_id: id(1, "801000000000001AAA"),
            sf_number: id(2, "00000042"),
            erp_ref: id(4, "SO-7"),
        }
    }

    fn time(unix: i64, nanos: u32) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix)
            .and_then(|t| t.replace_nanosecond(nanos))
            .expect("valid time")
    }

    /// A summary using every field, with `text` in each free-text field.
    fn summary(n: usize, text: &str) -> OrderSummary {
        let statuses = OrderStatus::ALL;
        let channels = [
            Channel::B2b,
            Channel::Web,
            Channel::Marketplace,
            Channel::Store,
        ];
        let returns = [
            ReturnStatus::Requested,
            ReturnStatus::Authorised,
            ReturnStatus::Received,
            ReturnStatus::Credited,
            ReturnStatus::Refunded,
            ReturnStatus::Closed,
            ReturnStatus::Rejected,
        ];
        let amounts = [
            "0",
            "104.31",
            "-0.01",
            "1.500",
            "79228162514264337593543950335",
            "-7",
        ];
        let amount = |k: usize| -> Decimal { amounts[(n + k) % amounts.len()].parse().unwrap() };
        let times = [
            Some(time(1_790_000_000, 0)),
            Some(time(1_790_000_001, 560_228_681)),
            Some(time(1_790_000_002, 500_000_000)),
            Some(time(1_790_000_003, 1)),
            Some(time(-62_167_219_200, 10)),
            Some(time(253_402_300_799, 999_999_999)),
            None,
        ];
        let at = |k: usize| times[(n + k) % times.len()];
        OrderSummary {
            id: OrderId::new(format!("ORD-{n}{text}")),
            refs: refs(n),
            account: AccountId::new(format!("ACC{text}")),
            channel: channels[n % channels.len()],
            currency: "EUR".parse().unwrap(),
            status: statuses[n % statuses.len()],
            total: amount(0),
            invoiced: amount(1),
            paid: amount(2),
            credited: amount(3),
            refunded: amount(4),
            lines: (1..=n % 3 + 1)
                .map(|line| LineSummary {
                    line: LineNo(u32::try_from(line).unwrap()),
                    sku: Sku::new(format!("SKU-{line}{text}")),
                    sf_id: (line % 2 == 0).then(|| format!("802{text}")),
                    unit_price: amount(line),
                    quantities: LineQuantities {
                        ordered: u32::MAX,
                        allocated: 0,
                        backordered: 10,
                        picked: 9,
                        shipped: 100,
                        delivered: 1_000_000,
                        invoiced: 7,
                        returned: 1,
                    },
                })
                .collect(),
            shipments: (0..n % 3)
                .map(|k| ShipmentSummary {
                    id: ShipmentId::new(format!("SH-{k}{text}")),
                    location: (k != 1).then(|| LocationId::new(format!("WH{text}"))),
                    milestone: (k != 2).then(|| Milestone::ALL[(n + k) % Milestone::ALL.len()]),
                    carrier: (k == 0).then(|| format!("UPS{text}")),
                    tracking: (k == 0).then(|| format!("1Z{text}")),
                    lines: (1..=k)
                        .map(|l| (LineNo(u32::try_from(l).unwrap()), 3))
                        .collect(),
                })
                .collect(),
            invoices: (0..n % 2)
                .map(|k| InvoiceSummary {
                    id: InvoiceId::new(format!("INV-{k}")),
                    number: format!("N{text}"),
                    total: amount(k),
                })
                .collect(),
            returns: (0..n % 3)
                .map(|k| ReturnSummary {
                    rma: RmaId::new(format!("RMA-{k}{text}")),
                    case: refs(n + k),
                    status: returns[(n + k) % returns.len()],
                    erp_ref: (k == 1).then(|| format!("R{text}")),
                    lines: vec![(LineNo(1), 1), (LineNo(2), 2)],
                    credit_memos: (0..k).map(|m| format!("CM-{m}{text}")).collect(),
                    credited: amount(k + 1),
                    refunded: amount(k + 2),
                    refusal: (k == 2).then(|| format!("no{text}")),
                })
                .collect(),
            reason: (n % 2 == 1).then(|| format!("why{text}")),
            times: StageTimes {
                captured: at(0),
                validated: at(1),
                booked: at(2),
                shipped: at(3),
                delivered: at(4),
                invoiced: at(5),
                paid: at(6),
                closed: at(7),
                cancelled: at(8),
            },
        }
    }

    #[test]
    fn the_writer_gives_the_text_serde_json_gives() {
        let texts = [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "\u{8}\t\n\u{c}\r",
            "\u{1}\u{1f}\u{7f}",
            "é ünïcödé 🚚",
            "</script>",
        ];
        for n in 0..64 {
            for text in texts {
                let summary = summary(n, text);
                let expected = serde_json::to_string(&summary).unwrap();
                assert_eq!(
                    summary.to_json().unwrap(),
                    expected,
                    "summary {n}, {text:?}"
                );
            }
        }
    }

    #[test]
    fn times_the_writer_does_not_render_fall_back_to_serde_json() {
        let mut summary = summary(1, "x");
        let offset = UtcOffset::from_hms(2, 30, 0).unwrap();
        summary.times.booked = Some(time(1_790_000_000, 5).to_offset(offset));
        assert_eq!(
            summary.to_json().unwrap(),
            serde_json::to_string(&summary).unwrap()
        );
        // A year RFC 3339 cannot write: the same error either way.
        summary.times.booked = Some(time(-62_167_219_201, 0));
        assert!(summary.to_json().is_err());
        assert!(serde_json::to_string(&summary).is_err());
    }
}
