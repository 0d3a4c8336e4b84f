//! The strict SOQL subset: `SELECT f, g.h FROM T [WHERE c AND c ...] [ORDER BY f [ASC|DESC]]
//! [LIMIT n]`, each condition `f op literal` or `f [NOT] IN (literal, ...)`.

use std::collections::HashMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

/// A literal: quoted text, or a bare date, datetime or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Literal {
    Text(String),
    Bare(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) field: String,
    op: &'static str,
    values: Vec<Literal>,
    negated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) fields: Vec<String>,
    pub(crate) from: String,
    pub(crate) conditions: Vec<Condition>,
    /// Field, descending.
    pub(crate) order_by: Option<(String, bool)>,
    pub(crate) limit: Option<usize>,
}

fn tokens(soql: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = soql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '=' => {
                chars.next();
                out.push(Token::Op("="));
            }
            '!' | '<' | '>' => {
                chars.next();
                let eq = chars.peek() == Some(&'=');
                if eq {
                    chars.next();
                }
                out.push(Token::Op(match (c, eq) {
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    _ => return Err("unexpected token: '!'".into()),
                }));
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') => break,
                        Some('\\') => {
                            let e = chars.next().ok_or("unterminated string literal")?;
                            text.push(match e {
                                'n' | 'N' => '\n',
                                'r' | 'R' => '\r',
                                't' | 'T' => '\t',
                                'b' | 'B' => '\u{8}',
                                'f' | 'F' => '\u{c}',
                                '"' | '\'' | '\\' => e,
                                other => {
                                    return Err(format!(
                                        "Invalid string literal: Illegal character sequence '\\{other}' in string literal."
                                    ))
                                }
                            });
                        }
                        Some(c) => text.push(c),
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(word));
            }
            other => return Err(format!("unexpected token: '{other}'")),
        }
    }
    Ok(out)
}

struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&mut self, k: &str) -> bool {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(k) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
        if self.keyword(k) {
            Ok(())
        } else {
            Err(format!("expecting '{k}', found {}", self.shown()))
        }
    }

    fn shown(&self) -> String {
        match self.peek() {
            None => "end of query".into(),
            Some(Token::Word(w)) => format!("'{w}'"),
            Some(Token::Text(_)) => "a string literal".into(),
            Some(t) => format!("{t:?}"),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) if w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
                Ok(w)
            }
            _ => {
                self.at -= 1;
                Err(format!("expecting a field name, found {}", self.shown()))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Text(t)) => Ok(Literal::Text(t)),
            Some(Token::Word(w)) if w.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                Ok(Literal::Bare(w))
            }
            _ => {
                self.at -= 1;
                Err(format!("expecting a literal, found {}", self.shown()))
            }
        }
    }
}

const RESERVED: [&str; 8] = ["from", "where", "and", "or", "order", "by", "limit", "in"];

pub(crate) fn parse(soql: &str) -> Result<Query, String> {
    let mut c = Cursor {
        tokens: tokens(soql)?,
        at: 0,
    };
    c.expect_keyword("SELECT")?;
    let mut fields = vec![c.name()?];
    while c.peek() == Some(&Token::Comma) {
        c.next();
        fields.push(c.name()?);
    }
    if let Some(f) = fields
        .iter()
        .find(|f| RESERVED.iter().any(|r| r.eq_ignore_ascii_case(f)))
    {
        return Err(format!("unexpected token: '{f}'"));
    }
    c.expect_keyword("FROM")?;
    let from = c.name()?;
    let mut conditions = Vec::new();
    if c.keyword("WHERE") {
        loop {
            conditions.push(condition(&mut c)?);
            if c.keyword("OR") {
                return Err("OR is not emulated".into());
            }
            if !c.keyword("AND") {
                break;
            }
        }
    }
    let mut order_by = None;
    if c.keyword("ORDER") {
        c.expect_keyword("BY")?;
        let field = c.name()?;
        let descending = if c.keyword("DESC") {
            true
        } else {
            c.keyword("ASC");
            false
        };
        order_by = Some((field, descending));
    }
    let mut limit = None;
    if c.keyword("LIMIT") {
        match c.next() {
            Some(Token::Word(n)) => {
                limit = Some(n.parse().map_err(|_| format!("bad LIMIT '{n}'"))?);
            }
            _ => return Err("expecting a number after LIMIT".into()),
        }
    }
    if c.peek().is_some() {
        return Err(format!("unexpected token: {}", c.shown()));
    }
    Ok(Query {
        fields,
        from,
        conditions,
        order_by,
        limit,
    })
}

fn condition(c: &mut Cursor) -> Result<Condition, String> {
    let field = c.name()?;
    let negated = c.keyword("NOT");
    if c.keyword("IN") {
        if c.next() != Some(Token::Open) {
            return Err("expecting '(' after IN".into());
        }
        let mut values = vec![c.literal()?];
        loop {
            match c.next() {
                Some(Token::Comma) => values.push(c.literal()?),
                Some(Token::Close) => break,
                _ => return Err("expecting ',' or ')' in an IN list".into()),
            }
        }
        return Ok(Condition {
            field,
            op: "in",
            values,
            negated,
        });
    }
    if negated {
        return Err("expecting IN after NOT".into());
    }
    let op = match c.next() {
        Some(Token::Op(op)) => op,
        _ => return Err(format!("expecting an operator after '{field}'")),
    };
    let value = c.literal()?;
    Ok(Condition {
        field,
        op,
        values: vec![value],
        negated: false,
    })
}

/// Dates and datetimes compare on their leading `YYYY-MM-DD[THH:MM:SS]` (UTC).
fn comparable(s: &str) -> &str {
    s.get(..19).unwrap_or(s)
}

impl Condition {
    pub(crate) fn holds(&self, record: &HashMap<&'static str, Value>) -> bool {
        let Some(actual) = super::field_text(record, &self.field) else {
            return self.negated || self.op == "!=";
        };
        let equal = |l: &Literal| match l {
            Literal::Text(t) => t.to_lowercase() == actual.to_lowercase(),
            Literal::Bare(b) => comparable(b) == comparable(&actual),
        };
        let order = |l: &Literal| {
            let (Literal::Text(v) | Literal::Bare(v)) = l;
            let (a, v) = (comparable(&actual), comparable(v));
            // A date field against a datetime literal compares on the date.
            let n = a.len().min(v.len());
            a[..n].cmp(&v[..n])
        };
        use std::cmp::Ordering::*;
        match self.op {
            "in" => self.values.iter().any(equal) != self.negated,
            "=" => equal(&self.values[0]),
            "!=" => !equal(&self.values[0]),
            ">=" => order(&self.values[0]) != Less,
            "<=" => order(&self.values[0]) != Greater,
            ">" => order(&self.values[0]) == Greater,
            "<" => order(&self.values[0]) == Less,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_fleetauth_and_sf_send_parse() {
        let q = parse("SELECT Id, SignupUsername, CreatedBy.Username FROM ScratchOrgInfo WHERE Status = 'Active' AND CreatedDate >= 2026-12-01T00:00:00Z AND CreatedBy.Username = 'o\\'neil\\\\ops' ORDER BY CreatedDate LIMIT 5").unwrap();
        assert_eq!(q.fields.len(), 3);
        assert_eq!(q.conditions.len(), 3);
        assert_eq!(
            q.conditions[2].values,
            [Literal::Text("o'neil\\ops".into())]
        );
        assert_eq!(q.limit, Some(5));
        parse("SELECT Id FROM ScratchOrgInfo limit 1").unwrap();
        parse("SELECT ScratchOrg FROM ScratchOrgInfo WHERE ScratchOrg IN ('00D000000000001','00D000000000002')").unwrap();
    }

    #[test]
    fn bad_literals_are_malformed() {
        for bad in [
            "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'o'brien'",
            "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'a\\qb'",
            "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'open",
            "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'a' OR Id = 'b'",
            "SELECT FROM ScratchOrgInfo",
            "SELECT Id FROM ScratchOrgInfo WHERE",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
