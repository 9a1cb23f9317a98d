//! The SOQL subset: `SELECT` fields (with parent relationships such as `Account.Name`),
//! `FIELDS(ALL|STANDARD|CUSTOM)`, child relationship subqueries (`(SELECT Id FROM OrderItems)`),
//! `COUNT()` or aggregates (`COUNT`, `COUNT_DISTINCT`, `SUM`, `AVG`, `MIN`, `MAX`, aliased or
//! `expr0…`), `FROM`, `WHERE` (`= != <> < > <= >= IN NOT IN LIKE AND OR NOT`, parentheses;
//! string, number, boolean, null, date, datetime and relative date literals such as `TODAY` or
//! `LAST_N_DAYS:30`), `GROUP BY`, `HAVING`, `ORDER BY` (`ASC`/`DESC`, `NULLS FIRST`/`LAST`),
//! `LIMIT`, `OFFSET`. Errors carry Salesforce's codes and the row/column message with a caret
//! line. Conditions nest at most [`MAX_NESTING`] levels, so no query exhausts the stack.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};
use time::{Date, Month};

use crate::ids;
use crate::meta::{FieldType, Kind};
use crate::store::{Org, Record};
use crate::value::{self, Value};

/// A query error: code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD` or `INVALID_TYPE`.
    pub code: &'static str,
    /// Message with the query, a caret line and `ERROR at Row:R:Column:C`.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Date(String),
    DateTime(String),
    Comma,
    Dot,
    LParen,
    RParen,
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    text: String,
}

fn error_at(src: &str, pos: usize, code: &'static str, reason: &str) -> QueryError {
    let chars: Vec<char> = src.chars().collect();
    let pos = pos.min(chars.len());
    let mut row = 1;
    let mut line_start = 0;
    for (i, c) in chars.iter().enumerate().take(pos) {
        if *c == '\n' {
            row += 1;
            line_start = i + 1;
        }
    }
    let line_end = chars[line_start..]
        .iter()
        .position(|c| *c == '\n')
        .map_or(chars.len(), |p| line_start + p);
    let line: String = chars[line_start..line_end].iter().collect();
    let col = pos - line_start + 1;
    QueryError {
        code,
        message: format!(
            "\n{line}\n{}^\nERROR at Row:{row}:Column:{col}\n{reason}",
            " ".repeat(col - 1)
        ),
    }
}

fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let simple = match c {
            ',' => Some(Tok::Comma),
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => Some(Tok::Dot),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token {
                tok,
                pos: start,
                text: c.to_string(),
            });
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(error_at(
                            src,
                            start,
                            "MALFORMED_QUERY",
                            "unterminated string literal",
                        ));
                    }
                    Some('\\') => {
                        let esc = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i.min(chars.len())].iter().collect();
            out.push(Token {
                tok: Tok::Str(s),
                pos: start,
                text,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            "!=" => Some("!="),
            "<>" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(op) = op {
            out.push(Token {
                tok: Tok::Op(op),
                pos: start,
                text: two,
            });
            i += 2;
            continue;
        }
        let one = match c {
            '=' => Some("="),
            '<' => Some("<"),
            '>' => Some(">"),
            _ => None,
        };
        if let Some(op) = one {
            out.push(Token {
                tok: Tok::Op(op),
                pos: start,
                text: c.to_string(),
            });
            i += 1;
            continue;
        }
        let signed = (c == '-' || c == '+')
            && chars
                .get(i + 1)
                .is_some_and(|d| d.is_ascii_digit() || *d == '.');
        if c.is_ascii_digit()
            || signed
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '-' | '+'))
            {
                // A sign only continues a date/datetime literal (`2026-01-01T00:00:00+01:00`).
                if matches!(chars[i], '-' | '+')
                    && !chars[start..i]
                        .iter()
                        .any(|x| *x == '-' || *x == 'T' || *x == 't')
                    && i - start != 4
                {
                    break;
                }
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let tok = if value::parse_date(&text).is_some() {
                Tok::Date(text.clone())
            } else if value::parse_datetime(&text).is_some() && text.len() > 10 {
                Tok::DateTime(text.clone())
            } else if value::parse_decimal(&text).is_some() {
                Tok::Num(text.clone())
            } else {
                return Err(error_at(
                    src,
                    start,
                    "MALFORMED_QUERY",
                    &format!("unexpected token: '{text}'"),
                ));
            };
            out.push(Token {
                tok,
                pos: start,
                text,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            // `LAST_N_DAYS:30`: a date literal with its number is one token.
            if chars.get(i) == Some(&':') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(text.clone()),
                pos: start,
                text,
            });
            continue;
        }
        return Err(error_at(
            src,
            start,
            "MALFORMED_QUERY",
            &format!("unexpected token: '{c}'"),
        ));
    }
    out.push(Token {
        tok: Tok::End,
        pos: chars.len(),
        text: String::new(),
    });
    Ok(out)
}

/// A dotted field path with its source position.
#[derive(Debug, Clone)]
struct Path {
    parts: Vec<String>,
    pos: usize,
}

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    Date(String),
    DateTime(String),
    /// A relative date literal (`TODAY`, `LAST_N_DAYS:30`): name in upper case and its number.
    Relative(String, Option<i64>),
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl Func {
    fn parse(name: &str) -> Option<Func> {
        Some(match name.to_ascii_uppercase().as_str() {
            "COUNT" => Func::Count,
            "COUNT_DISTINCT" => Func::CountDistinct,
            "SUM" => Func::Sum,
            "AVG" => Func::Avg,
            "MIN" => Func::Min,
            "MAX" => Func::Max,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Count => "COUNT",
            Func::CountDistinct => "COUNT_DISTINCT",
            Func::Sum => "SUM",
            Func::Avg => "AVG",
            Func::Min => "MIN",
            Func::Max => "MAX",
        }
    }
}

/// A field or an aggregate of one, where a condition or an ordering names a value.
#[derive(Debug, Clone)]
enum Operand {
    Field(Path),
    Agg(Func, Option<Path>, usize),
}

impl Operand {
    fn pos(&self) -> usize {
        match self {
            Operand::Field(p) => p.pos,
            Operand::Agg(_, _, pos) => *pos,
        }
    }

    fn label(&self) -> String {
        match self {
            Operand::Field(p) => p.parts.join("."),
            Operand::Agg(f, p, _) => format!(
                "{}({})",
                f.name(),
                p.as_ref().map(|p| p.parts.join(".")).unwrap_or_default()
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Operand, &'static str, Lit, usize),
    In(Operand, bool, Vec<(Lit, usize)>),
    Like(Operand, String),
}

#[derive(Debug, Clone)]
struct OrderBy {
    op: Operand,
    desc: bool,
    nulls_first: bool,
}

/// Which fields `FIELDS(...)` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldSet {
    All,
    Standard,
    Custom,
}

/// One item of a `SELECT` list.
#[derive(Debug, Clone)]
enum Item {
    /// A field with its alias (aliases are for aggregate queries only) and the alias' position.
    Field(Path, Option<(String, usize)>),
    Agg(Func, Option<Path>, Option<String>, usize),
    Fields(FieldSet, usize),
    Sub(Box<Ast>),
}

#[derive(Debug, Clone)]
struct Ast {
    count: bool,
    items: Vec<Item>,
    from: String,
    from_pos: usize,
    cond: Option<Cond>,
    group: Vec<Path>,
    having: Option<Cond>,
    order: Vec<OrderBy>,
    limit: Option<usize>,
    offset: Option<usize>,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    at: usize,
    /// Current nesting of parentheses and `NOT` in the condition being parsed.
    depth: usize,
}

/// Deepest nesting of parentheses and `NOT` accepted in a condition; deeper ones are refused
/// with `MALFORMED_QUERY` instead of exhausting the stack.
pub const MAX_NESTING: usize = 100;

/// Longest query text accepted, in characters (Salesforce's limit).
pub const MAX_QUERY_CHARS: usize = 100_000;

/// Most rows `FIELDS(ALL)` and `FIELDS(CUSTOM)` may ask for.
const FIELDS_LIMIT: usize = 200;

const RESERVED: &[&str] = &[
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc",
    "nulls", "limit", "offset", "null", "true", "false", "group", "having",
];

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.at + ahead).map(|t| &t.tok)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self) -> QueryError {
        let t = self.peek();
        let reason = if t.tok == Tok::End {
            "unexpected token: <EOF>".to_string()
        } else {
            format!("unexpected token: '{}'", t.text)
        };
        error_at(self.src, t.pos, "MALFORMED_QUERY", &reason)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), QueryError> {
        if &self.peek().tok == tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn path(&mut self) -> Result<Path, QueryError> {
        let t = self.peek().clone();
        let Tok::Ident(first) = &t.tok else {
            return Err(self.unexpected());
        };
        let followed_by_dot = self.peek_at(1).is_some_and(|t| *t == Tok::Dot);
        if RESERVED.contains(&first.to_ascii_lowercase().as_str()) && !followed_by_dot {
            return Err(self.unexpected());
        }
        self.next();
        let mut parts = vec![first.clone()];
        while self.peek().tok == Tok::Dot {
            self.next();
            match self.next().tok {
                Tok::Ident(s) => parts.push(s),
                _ => {
                    self.at -= 1;
                    return Err(self.unexpected());
                }
            }
        }
        Ok(Path { parts, pos: t.pos })
    }

    /// `FUNC(` ahead: the aggregate function.
    fn func_ahead(&self) -> Option<Func> {
        match &self.peek().tok {
            Tok::Ident(s) if self.peek_at(1) == Some(&Tok::LParen) => Func::parse(s),
            _ => None,
        }
    }

    /// `FUNC([field])` after [`Parser::func_ahead`].
    fn aggregate(&mut self, func: Func) -> Result<(Option<Path>, usize), QueryError> {
        let pos = self.next().pos;
        self.next();
        let arg = if self.peek().tok == Tok::RParen {
            if func != Func::Count {
                return Err(self.unexpected());
            }
            None
        } else {
            Some(self.path()?)
        };
        self.expect(&Tok::RParen)?;
        Ok((arg, pos))
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        if let Some(func) = self.func_ahead() {
            let (arg, pos) = self.aggregate(func)?;
            return Ok(Operand::Agg(func, arg, pos));
        }
        Ok(Operand::Field(self.path()?))
    }

    fn item(&mut self, nested: bool) -> Result<Item, QueryError> {
        let t = self.peek().clone();
        if t.tok == Tok::LParen {
            if nested {
                return Err(error_at(
                    self.src,
                    t.pos,
                    "MALFORMED_QUERY",
                    "Nesting of semi join sub-selects is not supported",
                ));
            }
            self.next();
            let sub = self.select(true)?;
            self.expect(&Tok::RParen)?;
            return Ok(Item::Sub(Box::new(sub)));
        }
        if let Tok::Ident(name) = &t.tok
            && name.eq_ignore_ascii_case("fields")
            && self.peek_at(1) == Some(&Tok::LParen)
        {
            self.next();
            self.next();
            let set = match &self.peek().tok {
                Tok::Ident(s) if s.eq_ignore_ascii_case("all") => FieldSet::All,
                Tok::Ident(s) if s.eq_ignore_ascii_case("standard") => FieldSet::Standard,
                Tok::Ident(s) if s.eq_ignore_ascii_case("custom") => FieldSet::Custom,
                _ => return Err(self.unexpected()),
            };
            self.next();
            self.expect(&Tok::RParen)?;
            return Ok(Item::Fields(set, t.pos));
        }
        if let Some(func) = self.func_ahead() {
            let (arg, pos) = self.aggregate(func)?;
            let alias = match &self.peek().tok {
                Tok::Ident(s) if !RESERVED.contains(&s.to_ascii_lowercase().as_str()) => {
                    let a = s.clone();
                    self.next();
                    Some(a)
                }
                _ => None,
            };
            return Ok(Item::Agg(func, arg, alias, pos));
        }
        let path = self.path()?;
        // An alias stands right before `,` or `FROM`.
        let alias_ends = self.peek_at(1).is_some_and(|t| {
            *t == Tok::Comma || matches!(t, Tok::Ident(k) if k.eq_ignore_ascii_case("from"))
        });
        let alias = match &self.peek().tok {
            Tok::Ident(s) if alias_ends && !RESERVED.contains(&s.to_ascii_lowercase().as_str()) => {
                let a = (s.clone(), self.peek().pos);
                self.next();
                Some(a)
            }
            _ => None,
        };
        Ok(Item::Field(path, alias))
    }

    /// `SELECT … FROM … [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT] [OFFSET]`; a nested
    /// (child relationship) select stops before its closing parenthesis.
    fn select(&mut self, nested: bool) -> Result<Ast, QueryError> {
        self.expect_kw("select")?;
        let mut items = Vec::new();
        loop {
            items.push(self.item(nested)?);
            if self.peek().tok == Tok::Comma {
                self.next();
            } else {
                break;
            }
        }
        let count = matches!(items.as_slice(), [Item::Agg(Func::Count, None, None, _)]);
        if !count
            && let Some(pos) = items.iter().find_map(|i| match i {
                Item::Agg(Func::Count, None, _, pos) => Some(*pos),
                _ => None,
            })
        {
            return Err(error_at(
                self.src,
                pos,
                "MALFORMED_QUERY",
                "COUNT() must be the only element in the SELECT list.",
            ));
        }
        self.expect_kw("from")?;
        let from_tok = self.peek().clone();
        let from = match &from_tok.tok {
            Tok::Ident(s) => s.clone(),
            _ => return Err(self.unexpected()),
        };
        self.next();
        let cond = if self.eat_kw("where") {
            Some(self.or()?)
        } else {
            None
        };
        let mut group = Vec::new();
        let mut having = None;
        if !nested && self.eat_kw("group") {
            self.expect_kw("by")?;
            loop {
                group.push(self.path()?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
            if self.eat_kw("having") {
                having = Some(self.or()?);
            }
        }
        let mut order = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let op = self.operand()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                let nulls_first = if self.eat_kw("nulls") {
                    if self.eat_kw("first") {
                        true
                    } else if self.eat_kw("last") {
                        false
                    } else {
                        return Err(self.unexpected());
                    }
                } else {
                    !desc
                };
                order.push(OrderBy {
                    op,
                    desc,
                    nulls_first,
                });
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
        }
        let mut limit = None;
        let mut offset = None;
        if self.eat_kw("limit") {
            limit = Some(self.count_literal()?);
        }
        if !nested && self.eat_kw("offset") {
            let t = self.peek().clone();
            let n = self.count_literal()?;
            if n > 2000 {
                return Err(error_at(
                    self.src,
                    t.pos,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    "Maximum SOQL offset allowed is 2000",
                ));
            }
            offset = Some(n);
        }
        let end_ok = if nested {
            self.peek().tok == Tok::RParen
        } else {
            self.peek().tok == Tok::End
        };
        if !end_ok {
            return Err(self.unexpected());
        }
        if let Some(pos) = items.iter().find_map(|i| match i {
            Item::Fields(FieldSet::All | FieldSet::Custom, pos) => Some(*pos),
            _ => None,
        }) && limit.is_none_or(|l| l > FIELDS_LIMIT)
        {
            return Err(error_at(
                self.src,
                pos,
                "MALFORMED_QUERY",
                &format!("The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}"),
            ));
        }
        Ok(Ast {
            count,
            items,
            from,
            from_pos: from_tok.pos,
            cond,
            group,
            having,
            order,
            limit,
            offset,
        })
    }

    fn count_literal(&mut self) -> Result<usize, QueryError> {
        match &self.peek().tok {
            Tok::Num(n) => {
                let v = n.parse::<usize>().map_err(|_| self.unexpected())?;
                self.next();
                Ok(v)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn or(&mut self) -> Result<Cond, QueryError> {
        // A chain of `OR`s (or `AND`s) is one flat list, so its length costs no stack.
        let mut items = vec![self.and()?];
        while self.eat_kw("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, QueryError> {
        let mut items = vec![self.unary()?];
        while self.eat_kw("and") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Cond::And(items)
        })
    }

    /// Enters one level of nesting, refusing more than [`MAX_NESTING`].
    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let t = self.peek();
            return Err(error_at(
                self.src,
                t.pos,
                "MALFORMED_QUERY",
                &format!("conditions may be nested at most {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Cond, QueryError> {
        if self.eat_kw("not") {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        if self.peek().tok == Tok::LParen {
            self.enter()?;
            self.next();
            let inner = self.or()?;
            if self.peek().tok != Tok::RParen {
                return Err(self.unexpected());
            }
            self.next();
            self.depth -= 1;
            return Ok(inner);
        }
        let op = self.operand()?;
        if self.eat_kw("like") {
            return match self.literal()? {
                (Lit::Str(s), _) => Ok(Cond::Like(op, s)),
                (_, pos) => Err(error_at(
                    self.src,
                    pos,
                    "MALFORMED_QUERY",
                    "LIKE needs a string literal",
                )),
            };
        }
        let negated = if self.is_kw("not")
            && self
                .peek_at(1)
                .is_some_and(|t| matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case("in")))
        {
            self.next();
            true
        } else {
            false
        };
        if self.eat_kw("in") {
            if self.peek().tok != Tok::LParen {
                return Err(self.unexpected());
            }
            self.next();
            if self.is_kw("select") {
                let t = self.peek().clone();
                return Err(error_at(
                    self.src,
                    t.pos,
                    "MALFORMED_QUERY",
                    "semi-join sub-selects are not supported",
                ));
            }
            let mut list = Vec::new();
            loop {
                list.push(self.literal()?);
                match self.peek().tok {
                    Tok::Comma => {
                        self.next();
                    }
                    Tok::RParen => {
                        self.next();
                        break;
                    }
                    _ => return Err(self.unexpected()),
                }
            }
            return Ok(Cond::In(op, negated, list));
        }
        let cmp = match self.peek().tok {
            Tok::Op(o) => o,
            _ => return Err(self.unexpected()),
        };
        self.next();
        let (lit, pos) = self.literal()?;
        Ok(Cond::Cmp(op, cmp, lit, pos))
    }

    fn literal(&mut self) -> Result<(Lit, usize), QueryError> {
        let t = self.peek().clone();
        let lit = match &t.tok {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Num(n) => Lit::Num(n.clone()),
            Tok::Date(d) => Lit::Date(d.clone()),
            Tok::DateTime(d) => Lit::DateTime(d.clone()),
            Tok::Ident(s) if s.eq_ignore_ascii_case("null") => Lit::Null,
            Tok::Ident(s) if s.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Ident(s) if s.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Tok::Ident(s) => {
                let upper = s.to_ascii_uppercase();
                let (name, n) = match upper.split_once(':') {
                    Some((name, n)) => (name.to_string(), n.parse::<i64>().ok()),
                    None => (upper.clone(), None),
                };
                match relative_kind(&name) {
                    Some(needs_n) if needs_n == n.is_some() => Lit::Relative(name, n),
                    Some(_) => {
                        return Err(error_at(
                            self.src,
                            t.pos,
                            "MALFORMED_QUERY",
                            &format!("unexpected token: '{s}'"),
                        ));
                    }
                    None => return Err(self.unexpected()),
                }
            }
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok((lit, t.pos))
    }
}

/// `Some(needs a number)` when `name` is a relative date literal.
fn relative_kind(name: &str) -> Option<bool> {
    Some(match name {
        "YESTERDAY" | "TODAY" | "TOMORROW" | "LAST_WEEK" | "THIS_WEEK" | "NEXT_WEEK"
        | "LAST_MONTH" | "THIS_MONTH" | "NEXT_MONTH" | "LAST_90_DAYS" | "NEXT_90_DAYS"
        | "THIS_QUARTER" | "LAST_QUARTER" | "NEXT_QUARTER" | "THIS_YEAR" | "LAST_YEAR"
        | "NEXT_YEAR" => false,
        "LAST_N_DAYS" | "NEXT_N_DAYS" | "N_DAYS_AGO" | "LAST_N_WEEKS" | "NEXT_N_WEEKS"
        | "N_WEEKS_AGO" | "LAST_N_MONTHS" | "NEXT_N_MONTHS" | "N_MONTHS_AGO"
        | "LAST_N_QUARTERS" | "NEXT_N_QUARTERS" | "LAST_N_YEARS" | "NEXT_N_YEARS"
        | "N_YEARS_AGO" => true,
        _ => return None,
    })
}

/// The first day of the month `k` months after `y`-`m` (month 1-12).
fn month_start(y: i32, m: u8, k: i64) -> Option<Date> {
    let total = i64::from(y) * 12 + i64::from(m) - 1 + k;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    Date::from_calendar_date(year, month, 1).ok()
}

/// The UTC days `[start, end)` a relative date literal covers on `today` (weeks start on
/// Sunday, quarters are calendar quarters).
fn relative_range(name: &str, n: Option<i64>, today: Date) -> Option<(Date, Date)> {
    // Far beyond any calendar: refused before `time`'s durations could overflow.
    let n = n.unwrap_or(0);
    if !(0..=1_000_000).contains(&n) {
        return None;
    }
    let day = |k: i64| today.checked_add(time::Duration::days(k));
    let week0 = today.checked_sub(time::Duration::days(i64::from(
        today.weekday().number_days_from_sunday(),
    )))?;
    let week = |k: i64| week0.checked_add(time::Duration::weeks(k));
    let (y, m) = (today.year(), u8::from(today.month()));
    let month = |k: i64| month_start(y, m, k);
    let q0 = (i64::from(m) - 1) / 3 * 3 - (i64::from(m) - 1);
    let quarter = |k: i64| month_start(y, m, q0 + 3 * k);
    let year = |k: i64| month_start(y, 1, 12 * k);
    Some(match name {
        "YESTERDAY" => (day(-1)?, day(0)?),
        "TODAY" => (day(0)?, day(1)?),
        "TOMORROW" => (day(1)?, day(2)?),
        "LAST_90_DAYS" => (day(-90)?, day(1)?),
        "NEXT_90_DAYS" => (day(1)?, day(91)?),
        "LAST_N_DAYS" => (day(-n)?, day(1)?),
        "NEXT_N_DAYS" => (day(1)?, day(n.checked_add(1)?)?),
        "N_DAYS_AGO" => (day(-n)?, day(1 - n)?),
        "LAST_WEEK" => (week(-1)?, week(0)?),
        "THIS_WEEK" => (week(0)?, week(1)?),
        "NEXT_WEEK" => (week(1)?, week(2)?),
        "LAST_N_WEEKS" => (week(-n)?, week(0)?),
        "NEXT_N_WEEKS" => (week(1)?, week(n.checked_add(1)?)?),
        "N_WEEKS_AGO" => (week(-n)?, week(1 - n)?),
        "LAST_MONTH" => (month(-1)?, month(0)?),
        "THIS_MONTH" => (month(0)?, month(1)?),
        "NEXT_MONTH" => (month(1)?, month(2)?),
        "LAST_N_MONTHS" => (month(-n)?, month(0)?),
        "NEXT_N_MONTHS" => (month(1)?, month(n.checked_add(1)?)?),
        "N_MONTHS_AGO" => (month(-n)?, month(1 - n)?),
        "LAST_QUARTER" => (quarter(-1)?, quarter(0)?),
        "THIS_QUARTER" => (quarter(0)?, quarter(1)?),
        "NEXT_QUARTER" => (quarter(1)?, quarter(2)?),
        "LAST_N_QUARTERS" => (quarter(-n)?, quarter(0)?),
        "NEXT_N_QUARTERS" => (quarter(1)?, quarter(n.checked_add(1)?)?),
        "LAST_YEAR" => (year(-1)?, year(0)?),
        "THIS_YEAR" => (year(0)?, year(1)?),
        "NEXT_YEAR" => (year(1)?, year(2)?),
        "LAST_N_YEARS" => (year(-n)?, year(0)?),
        "NEXT_N_YEARS" => (year(1)?, year(n.checked_add(1)?)?),
        "N_YEARS_AGO" => (year(-n)?, year(1 - n)?),
        _ => return None,
    })
}

/// A resolved field path: reference hops (object, reference field), then the target field.
#[derive(Debug, Clone)]
struct Resolved {
    hops: Vec<(usize, usize)>,
    object: usize,
    field: usize,
    ty: FieldType,
}

/// A compiled condition over operands of type `O` (record fields, or a group's values).
#[derive(Debug, Clone)]
enum Filter<O> {
    And(Vec<Filter<O>>),
    Or(Vec<Filter<O>>),
    Not(Box<Filter<O>>),
    Cmp(O, &'static str, Value),
    In(O, bool, Vec<Value>),
    Like(O, Vec<char>),
    /// A relative date literal: the operand's instant against `[start, end)` ms.
    Range(O, &'static str, i64, i64),
}

/// A value an aggregate query computes per group: a `GROUP BY` key or an aggregate.
#[derive(Debug, Clone)]
enum GroupValue {
    Key(usize),
    Agg(Func, Option<Resolved>),
}

/// One column of an aggregate query's rows.
#[derive(Debug, Clone)]
struct AggColumn {
    name: String,
    value: usize,
    ty: FieldType,
    aggregate: bool,
}

/// A child relationship subquery, run once per parent row.
#[derive(Debug, Clone)]
struct SubPlan {
    name: String,
    object: usize,
    link: usize,
    fields: Vec<(Resolved, Vec<String>)>,
    filter: Option<Filter<Resolved>>,
    order: Vec<(Resolved, bool, bool)>,
    limit: Option<usize>,
}

/// A column of a row query.
#[derive(Debug, Clone)]
enum Column {
    Field(Resolved, Vec<String>),
    Sub(SubPlan),
}

#[derive(Debug, Clone)]
enum Shape {
    Rows {
        columns: Vec<Column>,
        order: Vec<(Resolved, bool, bool)>,
    },
    Aggregate {
        keys: Vec<Resolved>,
        values: Vec<GroupValue>,
        columns: Vec<AggColumn>,
        having: Option<Filter<usize>>,
        order: Vec<(usize, bool, bool)>,
    },
}

/// A compiled query ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Queried object index.
    pub object: usize,
    count: bool,
    shape: Shape,
    filter: Option<Filter<Resolved>>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Parses and resolves a query against the org's metadata, with relative date literals read
/// on the machine's clock.
///
/// # Errors
/// [`QueryError`] with Salesforce's code and message.
pub fn compile(org: &Org, src: &str) -> Result<Plan, QueryError> {
    compile_at(org, src, crate::clock::Clock::default().now_ms())
}

/// Parses and resolves a query; relative date literals (`TODAY`, `LAST_N_DAYS:n`) are days in
/// UTC around `now_ms`.
///
/// # Errors
/// [`QueryError`] with Salesforce's code and message.
pub fn compile_at(org: &Org, src: &str, now_ms: i64) -> Result<Plan, QueryError> {
    if src.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError {
            code: "MALFORMED_QUERY",
            message: format!("SOQL statements cannot be longer than {MAX_QUERY_CHARS} characters."),
        });
    }
    let toks = lex(src)?;
    let ast = Parser {
        src,
        toks,
        at: 0,
        depth: 0,
    }
    .select(false)?;
    let cx = Cx {
        org,
        src,
        today: value::ms_date(now_ms),
    };
    cx.plan(&ast)
}

/// Turns an operand into its compiled form and its type.
type Resolver<'r, O> = dyn FnMut(&Operand) -> Result<(O, FieldType), QueryError> + 'r;

/// What compiling needs besides the syntax tree.
struct Cx<'a> {
    org: &'a Org,
    src: &'a str,
    today: Date,
}

impl Cx<'_> {
    fn err(&self, pos: usize, code: &'static str, reason: &str) -> QueryError {
        error_at(self.src, pos, code, reason)
    }

    fn object(&self, name: &str, pos: usize) -> Result<usize, QueryError> {
        self.org
            .meta
            .object_index(name)
            .filter(|&o| self.org.meta.objects[o].kind == Kind::SObject)
            .ok_or_else(|| {
                self.err(
                    pos,
                    "INVALID_TYPE",
                    &format!(
                        "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                )
            })
    }

    fn field_names(&self, r: &Resolved) -> Vec<String> {
        let mut names = Vec::new();
        for (obj, fi) in &r.hops {
            let fd = &self.org.meta.objects[*obj].fields[*fi];
            names.push(fd.relationship_name.clone().unwrap_or_default());
        }
        names.push(self.org.meta.objects[r.object].fields[r.field].name.clone());
        names
    }

    /// Plain fields of a select list (with `FIELDS(...)` expanded).
    fn plain_fields(
        &self,
        object: usize,
        items: &[Item],
    ) -> Result<Vec<(Resolved, Vec<String>)>, QueryError> {
        let def = &self.org.meta.objects[object];
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Field(p, alias) => {
                    if let Some((a, pos)) = alias {
                        return Err(self.err(
                            *pos,
                            "MALFORMED_QUERY",
                            &format!("unexpected token: '{a}'"),
                        ));
                    }
                    let r = resolve_path(self.org, self.src, object, p)?;
                    out.push((r.clone(), self.field_names(&r)));
                }
                Item::Fields(set, _) => {
                    for (fi, fd) in def.fields.iter().enumerate() {
                        let wanted = match set {
                            FieldSet::All => true,
                            FieldSet::Standard => !fd.custom,
                            FieldSet::Custom => fd.custom,
                        };
                        if wanted && !out.iter().any(|(r, n)| n.len() == 1 && r.field == fi) {
                            out.push((
                                Resolved {
                                    hops: Vec::new(),
                                    object,
                                    field: fi,
                                    ty: fd.ty,
                                },
                                vec![fd.name.clone()],
                            ));
                        }
                    }
                }
                Item::Agg(_, _, _, pos) => {
                    return Err(self.err(
                        *pos,
                        "MALFORMED_QUERY",
                        "Aggregate functions are not supported in a child relationship subquery",
                    ));
                }
                Item::Sub(_) => {}
            }
        }
        Ok(out)
    }

    fn row_order(
        &self,
        object: usize,
        order: &[OrderBy],
    ) -> Result<Vec<(Resolved, bool, bool)>, QueryError> {
        order
            .iter()
            .map(|o| match &o.op {
                Operand::Field(p) => Ok((
                    resolve_path(self.org, self.src, object, p)?,
                    o.desc,
                    o.nulls_first,
                )),
                Operand::Agg(_, _, pos) => Err(self.err(
                    *pos,
                    "MALFORMED_QUERY",
                    "Ordered field must be grouped or aggregated",
                )),
            })
            .collect()
    }

    fn where_filter(
        &self,
        object: usize,
        cond: Option<&Cond>,
    ) -> Result<Option<Filter<Resolved>>, QueryError> {
        let Some(c) = cond else { return Ok(None) };
        let mut resolve = |op: &Operand| match op {
            Operand::Field(p) => {
                let r = resolve_path(self.org, self.src, object, p)?;
                let ty = r.ty;
                Ok((r, ty))
            }
            Operand::Agg(_, _, pos) => Err(self.err(
                *pos,
                "MALFORMED_QUERY",
                "Aggregate functions are not allowed in the WHERE clause; use HAVING",
            )),
        };
        Ok(Some(self.cond(c, &mut resolve)?))
    }

    fn plan(&self, ast: &Ast) -> Result<Plan, QueryError> {
        let object = self.object(&ast.from, ast.from_pos)?;
        let filter = self.where_filter(object, ast.cond.as_ref())?;
        let aggregate =
            !ast.group.is_empty() || ast.items.iter().any(|i| matches!(i, Item::Agg(..)));
        let shape = if ast.count {
            Shape::Rows {
                columns: Vec::new(),
                order: Vec::new(),
            }
        } else if aggregate {
            self.aggregate_shape(object, ast)?
        } else {
            let mut columns = Vec::new();
            let plain = self.plain_fields(object, &ast.items)?;
            let mut plain = plain.into_iter();
            for item in &ast.items {
                match item {
                    Item::Sub(sub) => columns.push(Column::Sub(self.sub_plan(object, sub)?)),
                    Item::Field(..) => {
                        if let Some((r, n)) = plain.next() {
                            columns.push(Column::Field(r, n));
                        }
                    }
                    Item::Fields(..) => {}
                    Item::Agg(..) => {}
                }
            }
            // FIELDS(...) expansions come after the named fields they did not repeat.
            columns.extend(plain.map(|(r, n)| Column::Field(r, n)));
            Shape::Rows {
                columns,
                order: self.row_order(object, &ast.order)?,
            }
        };
        Ok(Plan {
            object,
            count: ast.count,
            shape,
            filter,
            limit: ast.limit,
            offset: ast.offset,
        })
    }

    fn sub_plan(&self, parent: usize, sub: &Ast) -> Result<SubPlan, QueryError> {
        let pdef = &self.org.meta.objects[parent];
        let child = self.org.meta.children_of(&pdef.name).into_iter().find(|c| {
            c["relationshipName"]
                .as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(&sub.from))
        });
        let Some(child) = child else {
            return Err(self.err(
                sub.from_pos,
                "INVALID_TYPE",
                &format!(
                    "Didn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                    sub.from
                ),
            ));
        };
        let object = self.object(
            child["childSObject"].as_str().unwrap_or_default(),
            sub.from_pos,
        )?;
        let link = self.org.meta.objects[object]
            .field_index(child["field"].as_str().unwrap_or_default())
            .ok_or_else(|| self.err(sub.from_pos, "INVALID_TYPE", "unknown relationship"))?;
        Ok(SubPlan {
            name: child["relationshipName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            object,
            link,
            fields: self.plain_fields(object, &sub.items)?,
            filter: self.where_filter(object, sub.cond.as_ref())?,
            order: self.row_order(object, &sub.order)?,
            limit: sub.limit,
        })
    }

    fn aggregate_shape(&self, object: usize, ast: &Ast) -> Result<Shape, QueryError> {
        let mut keys = Vec::new();
        for p in &ast.group {
            keys.push(resolve_path(self.org, self.src, object, p)?);
        }
        let mut values: Vec<GroupValue> = (0..keys.len()).map(GroupValue::Key).collect();
        let value_of = |op: &Operand,
                        values: &mut Vec<GroupValue>|
         -> Result<(usize, FieldType), QueryError> {
            match op {
                Operand::Field(p) => {
                    let r = resolve_path(self.org, self.src, object, p)?;
                    let k = keys
                        .iter()
                        .position(|k| {
                            k.object == r.object && k.field == r.field && k.hops == r.hops
                        })
                        .ok_or_else(|| {
                            self.err(
                                p.pos,
                                "MALFORMED_QUERY",
                                &format!(
                                    "field '{}' must be grouped or aggregated",
                                    p.parts.join(".")
                                ),
                            )
                        })?;
                    Ok((k, r.ty))
                }
                Operand::Agg(func, arg, pos) => {
                    let r = match arg {
                        Some(p) => Some(resolve_path(self.org, self.src, object, p)?),
                        None => None,
                    };
                    let ty = match (func, &r) {
                        (Func::Count | Func::CountDistinct, _) => FieldType::Int,
                        (Func::Sum | Func::Avg, Some(r)) if r.ty.is_number() => {
                            if *func == Func::Avg {
                                FieldType::Double
                            } else {
                                r.ty
                            }
                        }
                        (Func::Min | Func::Max, Some(r)) if r.ty != FieldType::Boolean => r.ty,
                        _ => {
                            return Err(self.err(
                                *pos,
                                "MALFORMED_QUERY",
                                &format!(
                                    "field {} does not support aggregate operator {}",
                                    arg.as_ref().map(|p| p.parts.join(".")).unwrap_or_default(),
                                    func.name()
                                ),
                            ));
                        }
                    };
                    values.push(GroupValue::Agg(*func, r));
                    Ok((values.len() - 1, ty))
                }
            }
        };
        let mut columns = Vec::new();
        let mut expr = 0;
        for item in &ast.items {
            match item {
                Item::Field(p, alias) => {
                    let (value, ty) = value_of(&Operand::Field(p.clone()), &mut values)?;
                    let name = alias.as_ref().map_or_else(
                        || {
                            self.org.meta.objects[keys[value].object].fields[keys[value].field]
                                .name
                                .clone()
                        },
                        |(a, _)| a.clone(),
                    );
                    columns.push(AggColumn {
                        name,
                        value,
                        ty,
                        aggregate: false,
                    });
                }
                Item::Agg(func, arg, alias, pos) => {
                    let (value, ty) =
                        value_of(&Operand::Agg(*func, arg.clone(), *pos), &mut values)?;
                    let name = alias.clone().unwrap_or_else(|| {
                        let n = format!("expr{expr}");
                        expr += 1;
                        n
                    });
                    columns.push(AggColumn {
                        name,
                        value,
                        ty,
                        aggregate: true,
                    });
                }
                Item::Fields(_, pos) => {
                    return Err(self.err(
                        *pos,
                        "MALFORMED_QUERY",
                        "FIELDS() cannot be used in an aggregate query",
                    ));
                }
                Item::Sub(sub) => {
                    return Err(self.err(
                        sub.from_pos,
                        "MALFORMED_QUERY",
                        "child relationship subqueries cannot be used in an aggregate query",
                    ));
                }
            }
        }
        let having = match &ast.having {
            Some(c) => {
                let mut resolve = |op: &Operand| value_of(op, &mut values);
                Some(self.cond(c, &mut resolve)?)
            }
            None => None,
        };
        let mut order = Vec::new();
        for o in &ast.order {
            let (v, _) = value_of(&o.op, &mut values)?;
            order.push((v, o.desc, o.nulls_first));
        }
        Ok(Shape::Aggregate {
            keys,
            values,
            columns,
            having,
            order,
        })
    }

    /// Compiles a condition; `resolve` turns an operand into its compiled form and type.
    fn cond<O>(&self, c: &Cond, resolve: &mut Resolver<'_, O>) -> Result<Filter<O>, QueryError> {
        Ok(match c {
            Cond::And(items) => Filter::And(
                items
                    .iter()
                    .map(|c| self.cond(c, resolve))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Or(items) => Filter::Or(
                items
                    .iter()
                    .map(|c| self.cond(c, resolve))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Not(a) => Filter::Not(Box::new(self.cond(a, resolve)?)),
            Cond::Cmp(op, cmp, lit, pos) => {
                let (o, ty) = resolve(op)?;
                if ty == FieldType::TextArea {
                    return Err(self.err(
                        op.pos(),
                        "INVALID_FIELD",
                        &format!("field '{}' can not be filtered in a query call", op.label()),
                    ));
                }
                if let Lit::Relative(name, n) = lit {
                    if !matches!(ty, FieldType::Date | FieldType::DateTime) {
                        return Err(self.err(
                            *pos,
                            "INVALID_FIELD",
                            &format!(
                                "value of filter criterion for field '{}' must be of type {} and should not be enclosed in quotes",
                                op.label(),
                                ty.name()
                            ),
                        ));
                    }
                    let (start, end) = relative_range(name, *n, self.today).ok_or_else(|| {
                        self.err(*pos, "MALFORMED_QUERY", "date literal out of range")
                    })?;
                    return Ok(Filter::Range(
                        o,
                        cmp,
                        value::date_ms(start),
                        value::date_ms(end),
                    ));
                }
                let v = literal_value(self.src, ty, &op.label(), lit, *pos)?;
                if v.is_null() && !matches!(*cmp, "=" | "!=") {
                    return Err(self.err(
                        *pos,
                        "MALFORMED_QUERY",
                        "null can only be compared with = or !=",
                    ));
                }
                Filter::Cmp(o, cmp, v)
            }
            Cond::In(op, neg, list) => {
                let (o, ty) = resolve(op)?;
                let mut vals = Vec::new();
                for (lit, pos) in list {
                    vals.push(literal_value(self.src, ty, &op.label(), lit, *pos)?);
                }
                Filter::In(o, *neg, vals)
            }
            Cond::Like(op, pat) => {
                let (o, ty) = resolve(op)?;
                if !ty.is_text() {
                    return Err(self.err(
                        op.pos(),
                        "INVALID_FIELD",
                        &format!("invalid operator on field '{}'", op.label()),
                    ));
                }
                Filter::Like(o, pat.to_lowercase().chars().collect())
            }
        })
    }
}

fn resolve_path(org: &Org, src: &str, object: usize, p: &Path) -> Result<Resolved, QueryError> {
    let mut parts: &[String] = &p.parts;
    let root = &org.meta.objects[object];
    if parts.len() > 1
        && parts[0].eq_ignore_ascii_case(&root.name)
        && root.relationship(&parts[0]).is_none()
    {
        parts = &parts[1..];
    }
    let mut cur = object;
    let mut hops = Vec::new();
    let no_field = |obj: usize, name: &str| {
        let def = &org.meta.objects[obj];
        error_at(
            src,
            p.pos,
            "INVALID_FIELD",
            &format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                def.name
            ),
        )
    };
    for (n, part) in parts.iter().enumerate() {
        let def = &org.meta.objects[cur];
        if n + 1 == parts.len() {
            let Some(fi) = def.field_index(part) else {
                return Err(no_field(cur, part));
            };
            return Ok(Resolved {
                hops,
                object: cur,
                field: fi,
                ty: def.fields[fi].ty,
            });
        }
        if hops.len() >= 5 {
            return Err(error_at(
                src,
                p.pos,
                "INVALID_FIELD",
                "A query can traverse at most 5 levels of parent relationships",
            ));
        }
        let Some(fi) = def.relationship(part) else {
            return Err(error_at(
                src,
                p.pos,
                "INVALID_FIELD",
                &format!(
                    "Didn't understand relationship '{part}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            ));
        };
        let Some(target) = def.fields[fi]
            .reference_to
            .iter()
            .find_map(|t| org.meta.object_index(t))
        else {
            return Err(no_field(cur, part));
        };
        hops.push((cur, fi));
        cur = target;
    }
    Err(error_at(src, p.pos, "MALFORMED_QUERY", "empty field path"))
}

fn literal_value(
    src: &str,
    ty: FieldType,
    field_name: &str,
    lit: &Lit,
    pos: usize,
) -> Result<Value, QueryError> {
    let bad = |what: &str| {
        error_at(
            src,
            pos,
            "INVALID_FIELD",
            &format!("value of filter criterion for field '{field_name}' must be of type {what}"),
        )
    };
    Ok(match (lit, ty) {
        (Lit::Null, _) => Value::Null,
        (Lit::Str(s), FieldType::Id | FieldType::Reference) => {
            Value::Text(ids::parse(s).map_or_else(|| s.clone(), |id| ids::to18(&id)))
        }
        (Lit::Str(s), t) if t.is_text() => Value::Text(s.clone()),
        (_, t) if t.is_text() => return Err(bad("string and should be enclosed in quotes")),
        (Lit::Num(n), t) if t.is_number() => {
            Value::Number(value::parse_decimal(n).ok_or_else(|| bad("double"))?)
        }
        (_, t) if t.is_number() => return Err(bad("double and should not be enclosed in quotes")),
        (Lit::Bool(b), FieldType::Boolean) => Value::Bool(*b),
        (_, FieldType::Boolean) => return Err(bad("boolean and should not be enclosed in quotes")),
        (Lit::Date(d), FieldType::Date) => {
            Value::Date(value::parse_date(d).ok_or_else(|| bad("date"))?)
        }
        (_, FieldType::Date) => return Err(bad("date and should not be enclosed in quotes")),
        (Lit::DateTime(d), FieldType::DateTime) => {
            Value::DateTime(value::parse_datetime(d).ok_or_else(|| bad("dateTime"))?)
        }
        (_, FieldType::DateTime) => {
            return Err(bad("dateTime and should not be enclosed in quotes"));
        }
        _ => return Err(bad("a supported type")),
    })
}

fn fetch<'a>(org: &'a Org, rec: &'a Record, r: &Resolved) -> Option<&'a Value> {
    let mut cur = rec;
    for (obj, fi) in &r.hops {
        let target = org.meta.objects[*obj].fields[*fi]
            .reference_to
            .iter()
            .find_map(|t| org.meta.object_index(t))?;
        let id = cur.get(*fi).as_text()?;
        cur = org.find(target, id).map(|(_, r)| r)?;
    }
    Some(cur.get(r.field))
}

fn like(pattern: &[char], text: &[char]) -> bool {
    // Iterative wildcard match: % any run, _ one char.
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '%' {
        p += 1;
    }
    p == pattern.len()
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => {
            x.eq_ignore_ascii_case(y) || x.to_lowercase() == y.to_lowercase()
        }
        _ => a.compare(b) == Ordering::Equal && a.is_null() == b.is_null(),
    }
}

/// Evaluates a condition; `get` reads an operand's value.
fn eval<'v, O>(f: &Filter<O>, get: &dyn Fn(&O) -> Option<&'v Value>) -> bool {
    match f {
        Filter::And(items) => items.iter().all(|f| eval(f, get)),
        Filter::Or(items) => items.iter().any(|f| eval(f, get)),
        Filter::Not(a) => !eval(a, get),
        Filter::Cmp(o, op, lit) => {
            let v = get(o).unwrap_or(&Value::Null);
            match *op {
                "=" => eq(v, lit),
                "!=" => !eq(v, lit),
                _ if v.is_null() => false,
                "<" => v.compare(lit) == Ordering::Less,
                ">" => v.compare(lit) == Ordering::Greater,
                "<=" => v.compare(lit) != Ordering::Greater,
                ">=" => v.compare(lit) != Ordering::Less,
                _ => false,
            }
        }
        Filter::In(o, neg, list) => {
            let v = get(o).unwrap_or(&Value::Null);
            list.iter().any(|l| eq(v, l)) != *neg
        }
        Filter::Like(o, pat) => match get(o) {
            Some(Value::Text(t)) => like(pat, &t.to_lowercase().chars().collect::<Vec<_>>()),
            _ => false,
        },
        Filter::Range(o, op, start, end) => {
            let ms = match get(o) {
                Some(Value::Date(d)) => value::date_ms(*d),
                Some(Value::DateTime(ms)) => *ms,
                _ => return *op == "!=",
            };
            let inside = ms >= *start && ms < *end;
            match *op {
                "=" => inside,
                "!=" => !inside,
                "<" => ms < *start,
                "<=" => ms < *end,
                ">" => ms >= *end,
                ">=" => ms >= *start,
                _ => false,
            }
        }
    }
}

fn matches(org: &Org, rec: &Record, f: &Filter<Resolved>) -> bool {
    eval(f, &|r: &Resolved| fetch(org, rec, r))
}

/// Orders two values with Salesforce's null placement.
fn order_values(va: &Value, vb: &Value, desc: bool, nulls_first: bool) -> Ordering {
    match (va.is_null(), vb.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = va.compare(vb);
            if desc { o.reverse() } else { o }
        }
    }
}

fn sort_records(org: &Org, rows: &mut [&Record], order: &[(Resolved, bool, bool)]) {
    if order.is_empty() {
        return;
    }
    rows.sort_by(|a, b| {
        for (r, desc, nulls_first) in order {
            let va = fetch(org, a, r).unwrap_or(&Value::Null);
            let vb = fetch(org, b, r).unwrap_or(&Value::Null);
            let ord = order_values(va, vb, *desc, *nulls_first);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

/// The result of running a plan: total size and the rendered rows.
#[derive(Debug, Clone)]
pub struct Rows {
    /// `totalSize`.
    pub total: usize,
    /// Records as JSON.
    pub records: Vec<Json>,
}

fn live(org: &Org, object: usize, all_rows: bool) -> impl Iterator<Item = &Record> {
    let deleted = org.meta.objects[object]
        .field_index("IsDeleted")
        .unwrap_or(usize::MAX);
    org.tables[object]
        .rows
        .values()
        .filter(move |r| all_rows || r.get(deleted) != &Value::Bool(true))
}

/// Runs a plan. `all_rows` includes soft-deleted records (`queryAll`).
pub fn run(org: &Org, plan: &Plan, all_rows: bool, version: &str) -> Rows {
    let mut rows: Vec<&Record> = live(org, plan.object, all_rows)
        .filter(|r| plan.filter.as_ref().is_none_or(|f| matches(org, r, f)))
        .collect();
    if plan.count {
        let mut n = rows.len().saturating_sub(plan.offset.unwrap_or(0));
        if let Some(l) = plan.limit {
            n = n.min(l);
        }
        return Rows {
            total: n,
            records: Vec::new(),
        };
    }
    let skip = plan.offset.unwrap_or(0);
    let take = plan.limit.unwrap_or(usize::MAX);
    let records: Vec<Json> = match &plan.shape {
        Shape::Rows { columns, order } => {
            sort_records(org, &mut rows, order);
            let children = children_index(org, columns, all_rows);
            rows.into_iter()
                .skip(skip)
                .take(take)
                .map(|rec| render(org, plan.object, columns, &children, rec, version))
                .collect()
        }
        Shape::Aggregate {
            keys,
            values,
            columns,
            having,
            order,
        } => {
            let mut groups = group_rows(org, &rows, keys, values);
            if let Some(h) = having {
                groups.retain(|g| eval(h, &|i: &usize| g.get(*i)));
            }
            if !order.is_empty() {
                groups.sort_by(|a, b| {
                    for (i, desc, nulls_first) in order {
                        let ord = order_values(&a[*i], &b[*i], *desc, *nulls_first);
                        if ord != Ordering::Equal {
                            return ord;
                        }
                    }
                    Ordering::Equal
                });
            }
            groups
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|g| {
                    let mut m = Map::new();
                    m.insert("attributes".into(), json!({"type": "AggregateResult"}));
                    for c in columns {
                        m.insert(c.name.clone(), g[c.value].to_json(c.ty));
                    }
                    Json::Object(m)
                })
                .collect()
        }
    };
    Rows {
        total: records.len(),
        records,
    }
}

/// The groups of an aggregate query, each as its computed values.
fn group_rows(
    org: &Org,
    rows: &[&Record],
    keys: &[Resolved],
    values: &[GroupValue],
) -> Vec<Vec<Value>> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut members: Vec<Vec<&Record>> = Vec::new();
    for rec in rows {
        let key: String = keys
            .iter()
            .map(|k| match fetch(org, rec, k).unwrap_or(&Value::Null) {
                Value::Text(t) => format!("T{}\u{0}", t.to_lowercase()),
                other => format!("{other:?}\u{0}"),
            })
            .collect();
        let at = *index.entry(key).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[at].push(rec);
    }
    if keys.is_empty() && members.is_empty() {
        members.push(Vec::new());
    }
    members
        .iter()
        .map(|recs| {
            values
                .iter()
                .map(|v| match v {
                    GroupValue::Key(k) => recs
                        .first()
                        .and_then(|r| fetch(org, r, &keys[*k]))
                        .cloned()
                        .unwrap_or_default(),
                    GroupValue::Agg(func, arg) => aggregate(org, recs, *func, arg.as_ref()),
                })
                .collect()
        })
        .collect()
}

fn aggregate(org: &Org, recs: &[&Record], func: Func, arg: Option<&Resolved>) -> Value {
    let vals: Vec<&Value> = match arg {
        Some(r) => recs
            .iter()
            .filter_map(|rec| fetch(org, rec, r))
            .filter(|v| !v.is_null())
            .collect(),
        None => Vec::new(),
    };
    let count = |n: usize| Value::Number(Decimal::from(n));
    match func {
        Func::Count if arg.is_none() => count(recs.len()),
        Func::Count => count(vals.len()),
        Func::CountDistinct => {
            let mut seen: Vec<&Value> = Vec::new();
            for v in &vals {
                if !seen.iter().any(|s| eq(s, v)) {
                    seen.push(v);
                }
            }
            count(seen.len())
        }
        Func::Sum | Func::Avg => {
            let nums: Vec<Decimal> = vals.iter().filter_map(|v| v.as_number()).collect();
            if nums.is_empty() {
                return Value::Null;
            }
            let sum = nums
                .iter()
                .fold(Decimal::ZERO, |a, b| a.checked_add(*b).unwrap_or(a));
            if func == Func::Sum {
                Value::Number(sum)
            } else {
                Value::Number(
                    sum.checked_div(Decimal::from(nums.len()))
                        .unwrap_or(Decimal::ZERO),
                )
            }
        }
        Func::Min => vals
            .iter()
            .min_by(|a, b| a.compare(b))
            .map(|v| (*v).clone())
            .unwrap_or_default(),
        Func::Max => vals
            .iter()
            .max_by(|a, b| a.compare(b))
            .map(|v| (*v).clone())
            .unwrap_or_default(),
    }
}

/// Child rows per subquery column, keyed by parent id (15 characters).
type Children<'a> = Vec<std::collections::HashMap<String, Vec<&'a Record>>>;

fn children_index<'a>(org: &'a Org, columns: &[Column], all_rows: bool) -> Children<'a> {
    columns
        .iter()
        .filter_map(|c| match c {
            Column::Sub(s) => Some(s),
            Column::Field(..) => None,
        })
        .map(|s| {
            let mut by_parent: std::collections::HashMap<String, Vec<&Record>> =
                std::collections::HashMap::new();
            for rec in live(org, s.object, all_rows) {
                if s.filter.as_ref().is_some_and(|f| !matches(org, rec, f)) {
                    continue;
                }
                if let Some(parent) = rec.get(s.link).as_text().and_then(ids::parse) {
                    by_parent.entry(parent).or_default().push(rec);
                }
            }
            for list in by_parent.values_mut() {
                sort_records(org, list, &s.order);
                if let Some(l) = s.limit {
                    list.truncate(l);
                }
            }
            by_parent
        })
        .collect()
}

fn attributes(org: &Org, object: usize, rec: &Record, version: &str) -> Json {
    let def = &org.meta.objects[object];
    let id = rec.get(0).as_text().unwrap_or_default();
    json!({"type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", def.name)})
}

fn render(
    org: &Org,
    object: usize,
    columns: &[Column],
    children: &Children<'_>,
    rec: &Record,
    version: &str,
) -> Json {
    let mut root = Map::new();
    root.insert("attributes".into(), attributes(org, object, rec, version));
    let mut sub = 0;
    for c in columns {
        match c {
            Column::Field(r, names) => insert_path(org, &mut root, rec, r, names, 0, version),
            Column::Sub(s) => {
                let id = rec
                    .get(0)
                    .as_text()
                    .and_then(ids::parse)
                    .unwrap_or_default();
                let kids = children.get(sub).and_then(|m| m.get(&id));
                sub += 1;
                let value = match kids {
                    None => Json::Null,
                    Some(kids) => {
                        let records: Vec<Json> = kids
                            .iter()
                            .map(|k| {
                                let mut m = Map::new();
                                m.insert(
                                    "attributes".into(),
                                    attributes(org, s.object, k, version),
                                );
                                for (r, names) in &s.fields {
                                    insert_path(org, &mut m, k, r, names, 0, version);
                                }
                                Json::Object(m)
                            })
                            .collect();
                        json!({"totalSize": records.len(), "done": true, "records": records})
                    }
                };
                root.insert(s.name.clone(), value);
            }
        }
    }
    Json::Object(root)
}

fn insert_path(
    org: &Org,
    map: &mut Map<String, Json>,
    rec: &Record,
    r: &Resolved,
    names: &[String],
    depth: usize,
    version: &str,
) {
    if depth == r.hops.len() {
        let fd = &org.meta.objects[r.object].fields[r.field];
        map.insert(fd.name.clone(), rec.get(r.field).to_json(fd.ty));
        return;
    }
    let (obj, fi) = r.hops[depth];
    let rel = names[depth].clone();
    let target = org.meta.objects[obj].fields[fi]
        .reference_to
        .iter()
        .find_map(|t| org.meta.object_index(t));
    let parent = target.and_then(|t| {
        rec.get(fi)
            .as_text()
            .and_then(|id| org.find(t, id))
            .map(|(_, p)| (t, p))
    });
    match parent {
        None => {
            map.entry(rel).or_insert(Json::Null);
        }
        Some((t, p)) => {
            let entry = map
                .entry(rel)
                .or_insert_with(|| json!({"attributes": attributes(org, t, p, version)}));
            if let Json::Object(child) = entry {
                insert_path(org, child, p, r, names, depth + 1, version);
            }
        }
    }
}

fn leaf_column(r: &Resolved, name: &str) -> Json {
    json!({
        "aggregate": false, "apexType": null, "booleanType": r.ty == FieldType::Boolean,
        "columnName": name, "custom": name.ends_with("__c"), "displayName": name,
        "foreignKeyName": null, "insertable": true, "joinColumns": [],
        "numberType": r.ty.is_number(), "textType": r.ty.is_text(), "updatable": true,
    })
}

fn field_columns<'a>(fields: impl Iterator<Item = (&'a Resolved, &'a Vec<String>)>) -> Vec<Json> {
    let mut cols: Vec<Json> = Vec::new();
    for (r, names) in fields {
        let leaf = leaf_column(r, names.last().map(String::as_str).unwrap_or_default());
        if names.len() == 1 {
            cols.push(leaf);
            continue;
        }
        let rel = names[0].clone();
        if let Some(existing) = cols.iter_mut().find(|c| {
            c["columnName"] == rel.as_str()
                && c["joinColumns"].as_array().is_some_and(|a| !a.is_empty())
        }) {
            if let Some(arr) = existing["joinColumns"].as_array_mut() {
                arr.push(leaf);
            }
        } else {
            cols.push(json!({
                "aggregate": false, "apexType": null, "booleanType": false, "columnName": rel,
                "custom": false, "displayName": names.join("."), "foreignKeyName": null,
                "insertable": false, "joinColumns": [leaf], "numberType": false, "textType": false, "updatable": false,
            }));
        }
    }
    cols
}

/// Column metadata for `columns=true`.
pub fn columns(org: &Org, plan: &Plan) -> Json {
    let def = &org.meta.objects[plan.object];
    let (cols, group_by, id_selected) = match &plan.shape {
        Shape::Rows { columns, .. } => {
            let mut cols = Vec::new();
            let mut plain: Vec<(&Resolved, &Vec<String>)> = Vec::new();
            for c in columns {
                match c {
                    Column::Field(r, n) => plain.push((r, n)),
                    Column::Sub(s) => {
                        cols.extend(field_columns(plain.drain(..)));
                        cols.push(json!({
                            "aggregate": true, "apexType": null, "booleanType": false,
                            "columnName": s.name, "custom": false, "displayName": s.name,
                            "foreignKeyName": null, "insertable": false,
                            "joinColumns": field_columns(s.fields.iter().map(|(r, n)| (r, n))),
                            "numberType": false, "textType": false, "updatable": false,
                        }));
                    }
                }
            }
            cols.extend(field_columns(plain.into_iter()));
            let id = columns
                .iter()
                .any(|c| matches!(c, Column::Field(r, n) if n.len() == 1 && r.field == 0));
            (cols, false, id)
        }
        Shape::Aggregate { columns, keys, .. } => {
            let cols = columns
                .iter()
                .map(|c| {
                    json!({
                        "aggregate": c.aggregate, "apexType": null,
                        "booleanType": c.ty == FieldType::Boolean, "columnName": c.name,
                        "custom": false, "displayName": c.name, "foreignKeyName": null,
                        "insertable": false, "joinColumns": [], "numberType": c.ty.is_number(),
                        "textType": c.ty.is_text(), "updatable": false,
                    })
                })
                .collect();
            (cols, !keys.is_empty(), false)
        }
    };
    json!({
        "columnMetadata": cols,
        "entityName": def.name,
        "groupBy": group_by,
        "idSelected": id_selected,
        "keyPrefix": def.key_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::EventLog;

    fn org() -> Org {
        Org::new(
            crate::meta::standard(),
            "Test",
            "u@example.com",
            0,
            EventLog::new(1, 1000),
        )
    }

    #[test]
    fn malformed_queries_report_row_and_column() {
        let org = org();
        let err = compile(&org, "SELECT Id FRM Account").err();
        assert_eq!(err.as_ref().map(|e| e.code), Some("MALFORMED_QUERY"));
        assert!(err.is_some_and(|e| e.message.contains("ERROR at Row:1:Column:11")));
    }

    #[test]
    fn unknown_objects_and_fields_have_their_codes() {
        let org = org();
        let e = compile(&org, "SELECT Id FROM Foo").err();
        assert_eq!(e.as_ref().map(|e| e.code), Some("INVALID_TYPE"));
        assert!(e.is_some_and(|e| e.message.contains("sObject type 'Foo' is not supported.")));
        let e = compile(&org, "SELECT Nme FROM Account").err();
        assert_eq!(e.map(|e| e.code), Some("INVALID_FIELD"));
    }

    #[test]
    fn order_is_an_object_and_a_relationship_not_only_a_keyword() {
        let org = org();
        assert!(compile(&org, "SELECT Id FROM Order ORDER BY OrderNumber").is_ok());
        assert!(
            compile(
                &org,
                "SELECT Id, Order.OrderNumber FROM OrderItem WHERE Order.Status = 'Draft'"
            )
            .is_ok()
        );
        assert!(compile(&org, "SELECT Id FROM Account ORDER BY").is_err());
    }

    #[test]
    fn relative_date_literals_are_salesforce_ranges() {
        let d = |y: i32, m: u8, day: u8| {
            Date::from_calendar_date(y, Month::try_from(m).unwrap_or(Month::January), day).ok()
        };
        // A Tuesday in December.
        let today = d(2026, 12, 8).unwrap_or(Date::MIN);
        let range = |name: &str, n: Option<i64>| {
            relative_range(name, n, today).map(|(a, b)| (Some(a), Some(b)))
        };
        let cases = [
            ("TODAY", None, (d(2026, 12, 8), d(2026, 12, 9))),
            ("YESTERDAY", None, (d(2026, 12, 7), d(2026, 12, 8))),
            ("TOMORROW", None, (d(2026, 12, 9), d(2026, 12, 10))),
            ("LAST_N_DAYS", Some(7), (d(2026, 12, 1), d(2026, 12, 9))),
            ("NEXT_N_DAYS", Some(3), (d(2026, 12, 9), d(2026, 12, 12))),
            ("N_DAYS_AGO", Some(8), (d(2026, 11, 30), d(2026, 12, 1))),
            ("THIS_WEEK", None, (d(2026, 12, 6), d(2026, 12, 13))),
            ("LAST_WEEK", None, (d(2026, 11, 29), d(2026, 12, 6))),
            ("THIS_MONTH", None, (d(2026, 12, 1), d(2027, 1, 1))),
            ("NEXT_MONTH", None, (d(2027, 1, 1), d(2027, 2, 1))),
            ("LAST_N_MONTHS", Some(2), (d(2026, 10, 1), d(2026, 12, 1))),
            ("THIS_QUARTER", None, (d(2026, 10, 1), d(2027, 1, 1))),
            ("LAST_QUARTER", None, (d(2026, 7, 1), d(2026, 10, 1))),
            ("NEXT_QUARTER", None, (d(2027, 1, 1), d(2027, 4, 1))),
            ("THIS_YEAR", None, (d(2026, 1, 1), d(2027, 1, 1))),
            ("LAST_N_YEARS", Some(2), (d(2024, 1, 1), d(2026, 1, 1))),
            ("LAST_90_DAYS", None, (d(2026, 9, 9), d(2026, 12, 9))),
        ];
        for (name, n, want) in cases {
            assert_eq!(range(name, n), Some(want), "{name}:{n:?}");
        }
        assert_eq!(relative_range("LAST_N_DAYS", Some(i64::MAX), today), None);
    }

    #[test]
    fn like_matches_wildcards() {
        let p: Vec<char> = "ac%e_".chars().collect();
        assert!(like(&p, &"acmex".chars().collect::<Vec<_>>()));
        assert!(like(&p, &"acex".chars().collect::<Vec<_>>()));
        assert!(!like(&p, &"acme".chars().collect::<Vec<_>>()));
    }

    #[test]
    fn the_organization_row_is_queryable() {
        let org = org();
        let plan = compile(&org, "SELECT Name, IsSandbox FROM Organization LIMIT 1");
        let rows = plan.map(|p| run(&org, &p, false, "60.0"));
        assert_eq!(rows.as_ref().map(|r| r.total).ok(), Some(1));
        assert_eq!(
            rows.ok().map(|r| r.records[0]["Name"].clone()),
            Some(json!("Test"))
        );
    }
}
