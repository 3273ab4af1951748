//! Tokens of MLflow's search grammar (the subset of SQL that `mlflow.utils.search_utils` accepts
//! through sqlparse).
//!
//! Dotted names are one token: `metrics.acc`, ``params.`my key` ``, `tags."a.b"` each become a
//! [`TokenKind::Path`] of segments, so a key segment may start with a digit (`metrics.1st`) or
//! contain any letter without being mistaken for a number or an operator.
//!
//! Quoting: single quotes make a string value; backticks quote a key segment; double quotes
//! quote a key segment when part of a dotted path and are a string value (or a bare quoted
//! attribute name such as `"run name"`) otherwise. A doubled quote character inside quotes
//! stands for itself (`'it''s'`; MLflow keeps both quotes). Backslashes are plain characters, so
//! Windows paths such as `'C:\data\'` work as they do in MLflow. A double-quoted entity
//! (`"params".a`) is accepted like a backticked one, where MLflow rejects it.

use super::SearchSyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// A bare word or a dotted path. Keywords (`AND`, `IN`, `ASC`…) are one-segment paths.
    Path(Vec<Segment>),
    /// A string value in single quotes, or in double quotes when not followed by `.`.
    Str {
        value: String,
        quote: char,
    },
    /// A numeric literal; `integer` when written without a decimal point or exponent.
    Number {
        value: f64,
        integer: bool,
    },
    /// `=`, `!=`, `<>`, `==`, `<`, `<=`, `>`, `>=`.
    Operator(&'static str),
    LeftParen,
    RightParen,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segment {
    /// The segment with its quotes removed.
    pub text: String,
    /// The quote character (`` ` ``, `"` or `'`), if the segment was quoted.
    pub quote: Option<char>,
    /// The segment as written, quotes included.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: TokenKind,
    /// The token as written.
    pub text: String,
    /// 1-based character position of the token's first character.
    pub position: usize,
}

impl Token {
    /// The keyword this token spells (upper-cased), if it is a bare unquoted word.
    pub fn keyword(&self) -> Option<String> {
        match &self.kind {
            TokenKind::Path(segments) if segments.len() == 1 && segments[0].quote.is_none() => {
                Some(segments[0].text.to_ascii_uppercase())
            }
            _ => None,
        }
    }

    pub fn is_keyword(&self, keyword: &str) -> bool {
        self.keyword().as_deref() == Some(keyword)
    }

    /// The token for a message: in single quotes unless it is a quoted string already.
    pub fn quoted(&self) -> String {
        if self.text.starts_with(['\'', '"']) {
            self.text.clone()
        } else {
            format!("'{}'", self.text)
        }
    }
}

pub(super) fn tokenize(input: &str) -> Result<Vec<Token>, SearchSyntaxError> {
    Lexer { input, chars: input.char_indices().collect(), index: 0 }.run()
}

struct Lexer<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    index: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_quote(c: char) -> bool {
    matches!(c, '\'' | '"' | '`')
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.index + ahead).map(|&(_, c)| c)
    }

    fn byte_offset(&self, index: usize) -> usize {
        self.chars.get(index).map_or(self.input.len(), |&(offset, _)| offset)
    }

    fn source(&self, start: usize) -> String {
        self.input[self.byte_offset(start)..self.byte_offset(self.index)].to_string()
    }

    fn run(mut self) -> Result<Vec<Token>, SearchSyntaxError> {
        let mut tokens = Vec::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.index += 1;
                continue;
            }
            let start = self.index;
            let kind = self.token(c)?;
            tokens.push(Token { kind, text: self.source(start), position: start + 1 });
        }
        Ok(tokens)
    }

    fn token(&mut self, c: char) -> Result<TokenKind, SearchSyntaxError> {
        let start = self.index;
        match c {
            '\'' => {
                let value = self.quoted('\'')?;
                Ok(TokenKind::Str { value, quote: '\'' })
            }
            '"' => {
                let value = self.quoted('"')?;
                if self.path_continues() {
                    let first = Segment { text: value, quote: Some('"'), raw: self.source(start) };
                    self.path(first)
                } else {
                    Ok(TokenKind::Str { value, quote: '"' })
                }
            }
            '`' => {
                let first = self.segment()?;
                self.path(first)
            }
            c if c.is_ascii_digit() => self.number(),
            '.' if self.peek_at(1).is_some_and(|n| n.is_ascii_digit()) => self.number(),
            '-' if self.peek_at(1).is_some_and(|n| n.is_ascii_digit())
                || (self.peek_at(1) == Some('.') && self.peek_at(2).is_some_and(|n| n.is_ascii_digit())) =>
            {
                self.number()
            }
            c if is_word_char(c) => {
                let first = self.segment()?;
                self.path(first)
            }
            '(' => {
                self.index += 1;
                Ok(TokenKind::LeftParen)
            }
            ')' => {
                self.index += 1;
                Ok(TokenKind::RightParen)
            }
            ',' => {
                self.index += 1;
                Ok(TokenKind::Comma)
            }
            '=' | '!' | '<' | '>' => self.operator(c),
            other => Err(SearchSyntaxError(format!("unexpected character '{other}' at position {}", start + 1))),
        }
    }

    /// Whether a `.` followed by another segment comes next.
    fn path_continues(&self) -> bool {
        self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| is_word_char(c) || is_quote(c))
    }

    fn path(&mut self, first: Segment) -> Result<TokenKind, SearchSyntaxError> {
        let mut segments = vec![first];
        while self.path_continues() {
            self.index += 1;
            segments.push(self.segment()?);
        }
        Ok(TokenKind::Path(segments))
    }

    fn segment(&mut self) -> Result<Segment, SearchSyntaxError> {
        let start = self.index;
        match self.peek() {
            Some(quote) if is_quote(quote) => {
                let text = self.quoted(quote)?;
                Ok(Segment { text, quote: Some(quote), raw: self.source(start) })
            }
            _ => {
                while self.peek().is_some_and(is_word_char) {
                    self.index += 1;
                }
                let text = self.source(start);
                Ok(Segment { raw: text.clone(), text, quote: None })
            }
        }
    }

    /// Reads a quoted run starting at the opening quote; a doubled quote is a literal quote.
    fn quoted(&mut self, quote: char) -> Result<String, SearchSyntaxError> {
        let start = self.index;
        self.index += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => {
                    let what = if quote == '`' { "identifier" } else { "string" };
                    return Err(SearchSyntaxError(format!(
                        "unterminated quoted {what} {} starting at position {}; close it with {quote}",
                        self.source(start),
                        start + 1
                    )));
                }
                Some(c) if c == quote => {
                    if self.peek_at(1) == Some(quote) {
                        value.push(quote);
                        self.index += 2;
                    } else {
                        self.index += 1;
                        return Ok(value);
                    }
                }
                Some(c) => {
                    value.push(c);
                    self.index += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<TokenKind, SearchSyntaxError> {
        let start = self.index;
        let mut integer = true;
        if self.peek() == Some('-') {
            self.index += 1;
        }
        self.digits();
        if self.peek() == Some('.') {
            integer = false;
            self.index += 1;
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                integer = false;
                self.index += 1 + sign;
                self.digits();
            }
        }
        // `1_000`, `0x10`, `1e`, `5..` and the like are not numbers.
        if self.peek().is_some_and(|c| is_word_char(c) || c == '.') {
            while self.peek().is_some_and(|c| is_word_char(c) || c == '.') {
                self.index += 1;
            }
            return Err(SearchSyntaxError(format!(
                "invalid number '{}' at position {}",
                self.source(start),
                start + 1
            )));
        }
        let text = self.source(start);
        let value = text
            .parse::<f64>()
            .map_err(|_| SearchSyntaxError(format!("invalid number '{text}' at position {}", start + 1)))?;
        Ok(TokenKind::Number { value, integer })
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.index += 1;
        }
    }

    fn operator(&mut self, first: char) -> Result<TokenKind, SearchSyntaxError> {
        let second = self.peek_at(1);
        let (operator, width) = match (first, second) {
            ('=', Some('=')) => ("==", 2),
            ('=', _) => ("=", 1),
            ('!', Some('=')) => ("!=", 2),
            ('<', Some('=')) => ("<=", 2),
            ('<', Some('>')) => ("<>", 2),
            ('<', _) => ("<", 1),
            ('>', Some('=')) => (">=", 2),
            ('>', _) => (">", 1),
            _ => {
                return Err(SearchSyntaxError(format!("unexpected character '{first}' at position {}", self.index + 1)))
            }
        };
        self.index += width;
        Ok(TokenKind::Operator(operator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input).unwrap().into_iter().map(|token| token.kind).collect()
    }

    fn path(parts: &[(&str, Option<char>)]) -> TokenKind {
        TokenKind::Path(
            parts
                .iter()
                .map(|&(text, quote)| Segment {
                    text: text.to_string(),
                    quote,
                    raw: match quote {
                        Some(q) => format!("{q}{text}{q}"),
                        None => text.to_string(),
                    },
                })
                .collect(),
        )
    }

    #[test]
    fn dotted_paths_are_one_token() {
        assert_eq!(
            kinds("metrics.acc>=1"),
            vec![
                path(&[("metrics", None), ("acc", None)]),
                TokenKind::Operator(">="),
                TokenKind::Number { value: 1.0, integer: true },
            ]
        );
        assert_eq!(kinds("tags.mlflow.runName"), vec![path(&[("tags", None), ("mlflow", None), ("runName", None)])]);
        assert_eq!(kinds("metrics.1st"), vec![path(&[("metrics", None), ("1st", None)])]);
        assert_eq!(
            kinds("params.`my key` `params`.\"a.b\" metrics.'x y'"),
            vec![
                path(&[("params", None), ("my key", Some('`'))]),
                path(&[("params", Some('`')), ("a.b", Some('"'))]),
                path(&[("metrics", None), ("x y", Some('\''))]),
            ]
        );
        assert_eq!(kinds("metrics.ünï"), vec![path(&[("metrics", None), ("ünï", None)])]);
    }

    #[test]
    fn strings_and_quotes() {
        assert_eq!(
            kinds(r#"'a b' "c" 'it''s' 'C:\data\'"#),
            vec![
                TokenKind::Str { value: "a b".into(), quote: '\'' },
                TokenKind::Str { value: "c".into(), quote: '"' },
                TokenKind::Str { value: "it's".into(), quote: '\'' },
                TokenKind::Str { value: r"C:\data\".into(), quote: '\'' },
            ]
        );
        let err = tokenize("params.a = 'open").unwrap_err();
        assert!(err.0.contains("unterminated quoted string 'open"), "{err}");
        let err = tokenize("params.`open = 'x'").unwrap_err();
        assert!(err.0.contains("unterminated quoted identifier"), "{err}");
    }

    #[test]
    fn numbers() {
        let cases: &[(&str, f64, bool)] = &[
            ("1", 1.0, true),
            ("-5", -5.0, true),
            ("01", 1.0, true),
            ("1.5", 1.5, false),
            ("5.", 5.0, false),
            (".5", 0.5, false),
            ("-.5", -0.5, false),
            ("1e5", 1e5, false),
            ("-1.5E-3", -1.5e-3, false),
            ("2e+2", 200.0, false),
        ];
        for &(input, value, integer) in cases {
            assert_eq!(kinds(input), vec![TokenKind::Number { value, integer }], "{input}");
        }
        for bad in ["1_000", "0x10", "1e", "5..", "1abc", "1.2.3"] {
            let err = tokenize(bad).unwrap_err();
            assert!(err.0.contains(&format!("invalid number '{bad}'")), "{err}");
        }
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            kinds("= != <> == < <= > >= ( , )"),
            vec![
                TokenKind::Operator("="),
                TokenKind::Operator("!="),
                TokenKind::Operator("<>"),
                TokenKind::Operator("=="),
                TokenKind::Operator("<"),
                TokenKind::Operator("<="),
                TokenKind::Operator(">"),
                TokenKind::Operator(">="),
                TokenKind::LeftParen,
                TokenKind::Comma,
                TokenKind::RightParen,
            ]
        );
        for (input, needle) in [
            ("params.a ≠ 'x'", "unexpected character '≠' at position 10"),
            ("metrics.a > 1;", "unexpected character ';' at position 14"),
            ("a ! b", "unexpected character '!' at position 3"),
            ("metrics.a > +5", "unexpected character '+'"),
            ("metrics.a > - 5", "unexpected character '-'"),
        ] {
            let err = tokenize(input).unwrap_err();
            assert!(err.0.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn tokens_keep_their_text_and_position() {
        let tokens = tokenize("  run_id IN ('a')").unwrap();
        assert_eq!(tokens[0].text, "run_id");
        assert_eq!(tokens[0].position, 3);
        assert!(tokens[1].is_keyword("IN"));
        assert_eq!(tokens[3].text, "'a'");
        assert!(tokenize("in").unwrap()[0].is_keyword("IN"));
        assert!(!tokenize("`in`").unwrap()[0].is_keyword("IN"));
    }
}
