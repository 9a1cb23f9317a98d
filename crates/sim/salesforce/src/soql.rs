//! The SOQL subset: `SELECT` fields (with parent relationships such as `Account.Name`) or
//! `COUNT()`, `FROM`, `WHERE` (`= != <> < > <= >= IN NOT IN LIKE AND OR NOT`, parentheses;
//! string, number, boolean, null, date and datetime literals), `ORDER BY` (`ASC`/`DESC`,
//! `NULLS FIRST`/`LAST`), `LIMIT`, `OFFSET`. Errors carry Salesforce's codes and the
//! row/column message with a caret line.

use std::cmp::Ordering;

use serde_json::{Map, Value as Json, json};

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
}

#[derive(Debug, Clone)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Path, &'static str, Lit, usize),
    In(Path, bool, Vec<(Lit, usize)>),
    Like(Path, String),
}

#[derive(Debug, Clone)]
struct OrderBy {
    path: Path,
    desc: bool,
    nulls_first: bool,
}

#[derive(Debug, Clone)]
struct Ast {
    count: bool,
    fields: Vec<Path>,
    from: String,
    from_pos: usize,
    cond: Option<Cond>,
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

const RESERVED: &[&str] = &[
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc",
    "nulls", "limit", "offset", "null", "true", "false", "group", "having",
];

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
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

    fn path(&mut self) -> Result<Path, QueryError> {
        let t = self.peek().clone();
        let Tok::Ident(first) = &t.tok else {
            return Err(self.unexpected());
        };
        let followed_by_dot = self
            .toks
            .get(self.at + 1)
            .is_some_and(|t| t.tok == Tok::Dot);
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

    fn parse(mut self) -> Result<Ast, QueryError> {
        self.expect_kw("select")?;
        let mut count = false;
        let mut fields = Vec::new();
        if self.is_kw("count")
            && self
                .toks
                .get(self.at + 1)
                .is_some_and(|t| t.tok == Tok::LParen)
        {
            self.next();
            self.next();
            if self.peek().tok != Tok::RParen {
                return Err(self.unexpected());
            }
            self.next();
            count = true;
        } else {
            loop {
                if self.peek().tok == Tok::LParen {
                    let t = self.peek().clone();
                    return Err(error_at(
                        self.src,
                        t.pos,
                        "MALFORMED_QUERY",
                        "child relationship subqueries are not supported",
                    ));
                }
                fields.push(self.path()?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
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
        let mut order = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let path = self.path()?;
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
                    path,
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
        if self.eat_kw("offset") {
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
        if self.peek().tok != Tok::End {
            return Err(self.unexpected());
        }
        Ok(Ast {
            count,
            fields,
            from,
            from_pos: from_tok.pos,
            cond,
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
        let path = self.path()?;
        if self.eat_kw("like") {
            return match self.literal()? {
                (Lit::Str(s), _) => Ok(Cond::Like(path, s)),
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
                .toks
                .get(self.at + 1)
                .is_some_and(|t| matches!(&t.tok, Tok::Ident(s) if s.eq_ignore_ascii_case("in")))
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
            return Ok(Cond::In(path, negated, list));
        }
        let op = match self.peek().tok {
            Tok::Op(op) => op,
            _ => return Err(self.unexpected()),
        };
        self.next();
        let (lit, pos) = self.literal()?;
        Ok(Cond::Cmp(path, op, lit, pos))
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
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok((lit, t.pos))
    }
}

/// A resolved field path: reference hops (object, reference field), then the target field.
#[derive(Debug, Clone)]
struct Resolved {
    hops: Vec<(usize, usize)>,
    object: usize,
    field: usize,
    ty: FieldType,
}

#[derive(Debug, Clone)]
enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp(Resolved, &'static str, Value),
    In(Resolved, bool, Vec<Value>),
    Like(Resolved, Vec<char>),
}

/// A compiled query ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Queried object index.
    pub object: usize,
    count: bool,
    fields: Vec<(Resolved, Vec<String>)>,
    filter: Option<Filter>,
    order: Vec<(Resolved, bool, bool)>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Parses and resolves a query against the org's metadata.
///
/// # Errors
/// [`QueryError`] with Salesforce's code and message.
pub fn compile(org: &Org, src: &str) -> Result<Plan, QueryError> {
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
    .parse()?;
    let Some(object) = org
        .meta
        .object_index(&ast.from)
        .filter(|&o| org.meta.objects[o].kind == Kind::SObject)
    else {
        return Err(error_at(
            src,
            ast.from_pos,
            "INVALID_TYPE",
            &format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                ast.from
            ),
        ));
    };
    let resolve = |p: &Path| resolve_path(org, src, object, p);
    let mut fields = Vec::new();
    for p in &ast.fields {
        let r = resolve(p)?;
        let mut names = Vec::new();
        let mut cur = object;
        for (obj, fi) in &r.hops {
            let fd = &org.meta.objects[*obj].fields[*fi];
            names.push(fd.relationship_name.clone().unwrap_or_default());
            cur = *obj;
        }
        let _ = cur;
        names.push(org.meta.objects[r.object].fields[r.field].name.clone());
        fields.push((r, names));
    }
    let filter = match &ast.cond {
        Some(c) => Some(compile_cond(org, src, object, c)?),
        None => None,
    };
    let mut order = Vec::new();
    for o in &ast.order {
        order.push((resolve(&o.path)?, o.desc, o.nulls_first));
    }
    Ok(Plan {
        object,
        count: ast.count,
        fields,
        filter,
        order,
        limit: ast.limit,
        offset: ast.offset,
    })
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
    r: &Resolved,
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
    Ok(match (lit, r.ty) {
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

fn compile_cond(org: &Org, src: &str, object: usize, c: &Cond) -> Result<Filter, QueryError> {
    let name = |p: &Path| p.parts.join(".");
    Ok(match c {
        Cond::And(items) => Filter::And(
            items
                .iter()
                .map(|c| compile_cond(org, src, object, c))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Or(items) => Filter::Or(
            items
                .iter()
                .map(|c| compile_cond(org, src, object, c))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Not(a) => Filter::Not(Box::new(compile_cond(org, src, object, a)?)),
        Cond::Cmp(p, op, lit, pos) => {
            let r = resolve_path(org, src, object, p)?;
            let v = literal_value(src, &r, &name(p), lit, *pos)?;
            if v.is_null() && !matches!(*op, "=" | "!=") {
                return Err(error_at(
                    src,
                    *pos,
                    "MALFORMED_QUERY",
                    "null can only be compared with = or !=",
                ));
            }
            if r.ty == FieldType::TextArea {
                return Err(error_at(
                    src,
                    p.pos,
                    "INVALID_FIELD",
                    &format!("field '{}' can not be filtered in a query call", name(p)),
                ));
            }
            Filter::Cmp(r, op, v)
        }
        Cond::In(p, neg, list) => {
            let r = resolve_path(org, src, object, p)?;
            let mut vals = Vec::new();
            for (lit, pos) in list {
                vals.push(literal_value(src, &r, &name(p), lit, *pos)?);
            }
            Filter::In(r, *neg, vals)
        }
        Cond::Like(p, pat) => {
            let r = resolve_path(org, src, object, p)?;
            if !r.ty.is_text() {
                return Err(error_at(
                    src,
                    p.pos,
                    "INVALID_FIELD",
                    &format!("invalid operator on field '{}'", name(p)),
                ));
            }
            Filter::Like(r, pat.to_lowercase().chars().collect())
        }
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

fn eval(org: &Org, rec: &Record, f: &Filter) -> bool {
    match f {
        Filter::And(items) => items.iter().all(|f| eval(org, rec, f)),
        Filter::Or(items) => items.iter().any(|f| eval(org, rec, f)),
        Filter::Not(a) => !eval(org, rec, a),
        Filter::Cmp(r, op, lit) => {
            let v = fetch(org, rec, r).unwrap_or(&Value::Null);
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
        Filter::In(r, neg, list) => {
            let v = fetch(org, rec, r).unwrap_or(&Value::Null);
            list.iter().any(|l| eq(v, l)) != *neg
        }
        Filter::Like(r, pat) => match fetch(org, rec, r) {
            Some(Value::Text(t)) => like(pat, &t.to_lowercase().chars().collect::<Vec<_>>()),
            _ => false,
        },
    }
}

/// The result of running a plan: total size and the rendered rows.
#[derive(Debug, Clone)]
pub struct Rows {
    /// `totalSize`.
    pub total: usize,
    /// Records as JSON.
    pub records: Vec<Json>,
}

/// Runs a plan. `all_rows` includes soft-deleted records (`queryAll`).
pub fn run(org: &Org, plan: &Plan, all_rows: bool, version: &str) -> Rows {
    let def = &org.meta.objects[plan.object];
    let deleted = def.field_index("IsDeleted").unwrap_or(usize::MAX);
    let mut rows: Vec<&Record> = org.tables[plan.object]
        .rows
        .values()
        .filter(|r| all_rows || r.get(deleted) != &Value::Bool(true))
        .filter(|r| plan.filter.as_ref().is_none_or(|f| eval(org, r, f)))
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
    if !plan.order.is_empty() {
        rows.sort_by(|a, b| {
            for (r, desc, nulls_first) in &plan.order {
                let va = fetch(org, a, r).unwrap_or(&Value::Null);
                let vb = fetch(org, b, r).unwrap_or(&Value::Null);
                let ord = match (va.is_null(), vb.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => {
                        if *nulls_first {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    (false, true) => {
                        if *nulls_first {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    _ => {
                        let o = va.compare(vb);
                        if *desc { o.reverse() } else { o }
                    }
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    let skip = plan.offset.unwrap_or(0);
    let take = plan.limit.unwrap_or(usize::MAX);
    let records: Vec<Json> = rows
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|rec| render(org, plan, rec, version))
        .collect();
    Rows {
        total: records.len(),
        records,
    }
}

fn render(org: &Org, plan: &Plan, rec: &Record, version: &str) -> Json {
    let def = &org.meta.objects[plan.object];
    let mut root = Map::new();
    let id = rec.get(0).as_text().unwrap_or_default();
    root.insert("attributes".into(), json!({"type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", def.name)}));
    for (r, names) in &plan.fields {
        insert_path(org, &mut root, rec, r, names, 0, version);
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
            let entry = map.entry(rel).or_insert_with(|| {
                let tdef = &org.meta.objects[t];
                let pid = p.get(0).as_text().unwrap_or_default();
                json!({"attributes": {"type": tdef.name, "url": format!("/services/data/v{version}/sobjects/{}/{pid}", tdef.name)}})
            });
            if let Json::Object(child) = entry {
                insert_path(org, child, p, r, names, depth + 1, version);
            }
        }
    }
}

/// Column metadata for `columns=true`.
pub fn columns(org: &Org, plan: &Plan) -> Json {
    let def = &org.meta.objects[plan.object];
    let mut cols: Vec<Json> = Vec::new();
    for (r, names) in &plan.fields {
        let leaf = json!({
            "aggregate": false, "apexType": null, "booleanType": r.ty == FieldType::Boolean,
            "columnName": names.last().cloned().unwrap_or_default(),
            "custom": names.last().is_some_and(|n| n.ends_with("__c")),
            "displayName": names.last().cloned().unwrap_or_default(),
            "foreignKeyName": null, "insertable": true, "joinColumns": [],
            "numberType": r.ty.is_number(), "textType": r.ty.is_text(), "updatable": true,
        });
        if names.len() == 1 {
            cols.push(leaf);
        } else {
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
    }
    json!({
        "columnMetadata": cols,
        "entityName": def.name,
        "groupBy": false,
        "idSelected": plan.fields.iter().any(|(r, n)| n.len() == 1 && r.field == 0),
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
