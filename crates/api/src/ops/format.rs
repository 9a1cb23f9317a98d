//! Plain-words formatting shared by the dashboard and the command line: money with thousands
//! separators, durations as "12 min", lateness as "12 min late".

use rust_decimal::{Decimal, RoundingStrategy};

/// Money as `USD 12,345.60` (two decimals, half-up rounding, thousands separated).
pub fn money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let text = format!("{:.2}", rounded.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if negative { "-" } else { "" };
    if currency.is_empty() {
        format!("{sign}{grouped}.{cents}")
    } else {
        format!("{currency} {sign}{grouped}.{cents}")
    }
}

/// A duration in the largest fitting unit: `45 s`, `12 min`, `3 h 20 min`, `2 days 4 h`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3_600 {
        format!("{} min", secs / 60)
    } else if secs < 86_400 {
        let minutes = (secs % 3_600) / 60;
        if minutes == 0 {
            format!("{} h", secs / 3_600)
        } else {
            format!("{} h {minutes} min", secs / 3_600)
        }
    } else {
        let days = secs / 86_400;
        let hours = (secs % 86_400) / 3_600;
        let unit = if days == 1 { "day" } else { "days" };
        if hours == 0 {
            format!("{days} {unit}")
        } else {
            format!("{days} {unit} {hours} h")
        }
    }
}

/// Lateness in words: `12 min late`, or `on time` when not late.
pub fn late(secs: i64) -> String {
    if secs <= 0 {
        "on time".to_owned()
    } else {
        format!("{} late", duration(secs))
    }
}

/// How long ago: `just now`, `5 min ago`.
pub fn ago(secs: i64) -> String {
    if secs < 5 {
        "just now".to_owned()
    } else {
        format!("{} ago", duration(secs))
    }
}

/// Rows as aligned text columns (two spaces apart; the last column is not padded). Widths
/// count characters, so `€` and `→` align like ASCII.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["ID".to_owned(), "WHAT".to_owned(), "NOTE".to_owned()],
            vec!["12345".to_owned(), "€ 1".to_owned(), "x".to_owned()],
        ];
        assert_eq!(super::table(&rows), "ID     WHAT  NOTE\n12345  € 1   x\n");
    }

    use super::*;

    #[test]
    fn money_is_grouped_and_rounded() {
        assert_eq!(
            money(Decimal::new(1_234_567_891, 3), "USD"),
            "USD 1,234,567.89"
        );
        assert_eq!(money(Decimal::new(5, 3), "EUR"), "EUR 0.01");
        assert_eq!(money(Decimal::new(-120_050, 2), "USD"), "USD -1,200.50");
        assert_eq!(money(Decimal::ZERO, ""), "0.00");
        assert_eq!(money(Decimal::new(100, 0), "USD"), "USD 100.00");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(12 * 60 + 5), "12 min");
        assert_eq!(duration(3 * 3_600), "3 h");
        assert_eq!(duration(3 * 3_600 + 20 * 60), "3 h 20 min");
        assert_eq!(duration(86_400), "1 day");
        assert_eq!(duration(2 * 86_400 + 4 * 3_600), "2 days 4 h");
        assert_eq!(late(720), "12 min late");
        assert_eq!(late(-3), "on time");
        assert_eq!(ago(2), "just now");
        assert_eq!(ago(600), "10 min ago");
    }
}
