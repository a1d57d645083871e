//! Lexer and parser for the Go `text/template` subset: text, `{{pipeline}}`
//! actions with trim markers and comments, `if`/`else if`/`range`/`with`,
//! `break`/`continue`, variables, parenthesised pipelines and literals.

use super::TemplateError;

/// A parsed template body.
pub type List = Vec<Node>;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    /// Variables declared (`$x :=`) or assigned (`$x =`) by this pipeline.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone)]
pub struct Operand {
    pub pos: usize,
    /// Source text, shown in errors as `at <.Foo>`.
    pub text: String,
    pub kind: Term,
}

#[derive(Debug, Clone)]
pub enum Term {
    /// `.A.B`: fields looked up from dot.
    Field(Vec<String>),
    /// `$x.A`: a variable and optional fields.
    Variable(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A function name.
    Ident(String),
    /// `(pipeline).A`
    Pipe(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Str(String),
    Number(String),
    Char(i64),
    Dot,
    Field(String),
    Variable(String),
    Ident(String),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

/// Functions a template may call; anything else is a parse error as in Go.
const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate", "slice",
    "urlquery", "html", "js", "call",
];

pub fn parse(src: &str) -> Result<List, TemplateError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
    };
    let (list, end) = p.list()?;
    match end {
        Stop::Eof => Ok(list),
        Stop::End(pos) => Err(p.err(pos, "unexpected {{end}}")),
        Stop::Else(pos, _) => Err(p.err(pos, "unexpected {{else}}")),
    }
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src[..pos.min(src.len())].matches('\n').count()
}

fn parse_err(src: &str, pos: usize, msg: &str) -> TemplateError {
    TemplateError(format!("template: :{}: {msg}", line_of(src, pos)))
}

// ---------------------------------------------------------------- lexer

fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let bytes = src.as_bytes();
    let mut toks: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut trim_next_text = false;
    while i < bytes.len() {
        let start = i;
        let next = src[i..].find("{{").map_or(src.len(), |o| i + o);
        let mut text = &src[start..next];
        if trim_next_text {
            text = text.trim_start_matches(is_space);
            trim_next_text = false;
        }
        // "{{- " trims the whitespace before the action.
        let trim_left = src[next..].starts_with("{{-") && src[next + 3..].starts_with(is_space);
        if trim_left {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            toks.push(Token {
                tok: Tok::Text(text.to_string()),
                pos: start,
            });
        }
        if next >= bytes.len() {
            break;
        }
        i = next + 2;
        if trim_left {
            i += 2;
        }
        // Comments: {{/* ... */}} with optional trim markers.
        let rest = &src[i..];
        let after_space = rest.trim_start_matches(is_space);
        if after_space.starts_with("/*") {
            let body_start = i + (rest.len() - after_space.len());
            let close = src[body_start..]
                .find("*/")
                .ok_or_else(|| parse_err(src, body_start, "unclosed comment"))?;
            let mut j = body_start + close + 2;
            let tail = &src[j..];
            if let Some(stripped) = tail.strip_prefix(" -}}") {
                trim_next_text = true;
                j = src.len() - stripped.len();
            } else if tail.starts_with("}}") {
                j += 2;
            } else {
                return Err(parse_err(src, j, "comment ends before closing delimiter"));
            }
            i = j;
            continue;
        }
        toks.push(Token {
            tok: Tok::Left,
            pos: next,
        });
        i = lex_action(src, i, &mut toks, &mut trim_next_text)?;
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(toks)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Lexes the inside of one action starting at `i`; returns the index after `}}`.
fn lex_action(
    src: &str,
    mut i: usize,
    toks: &mut Vec<Token>,
    trim_next_text: &mut bool,
) -> Result<usize, TemplateError> {
    let mut paren_depth = 0usize;
    loop {
        let rest = &src[i..];
        if rest.starts_with(" -}}") || rest.starts_with("\t-}}") || rest.starts_with("\n-}}") {
            *trim_next_text = true;
            toks.push(Token {
                tok: Tok::Right,
                pos: i,
            });
            return Ok(i + 4);
        }
        if rest.starts_with("}}") {
            toks.push(Token {
                tok: Tok::Right,
                pos: i,
            });
            return Ok(i + 2);
        }
        let Some(c) = rest.chars().next() else {
            return Err(parse_err(src, i, "unclosed action"));
        };
        let start = i;
        let push = |toks: &mut Vec<Token>, tok| toks.push(Token { tok, pos: start });
        match c {
            c if is_space(c) => {
                let n = rest.len() - rest.trim_start_matches(is_space).len();
                // A space directly before " -}}" belongs to the trim marker.
                i += n;
                if !src[i..].starts_with("-}}") {
                    push(toks, Tok::Space);
                } else {
                    *trim_next_text = true;
                    toks.push(Token {
                        tok: Tok::Right,
                        pos: i,
                    });
                    return Ok(i + 3);
                }
            }
            '|' => {
                push(toks, Tok::Pipe);
                i += 1;
            }
            '(' => {
                paren_depth += 1;
                push(toks, Tok::LParen);
                i += 1;
            }
            ')' => {
                if paren_depth == 0 {
                    return Err(parse_err(src, i, "unexpected right paren"));
                }
                paren_depth -= 1;
                push(toks, Tok::RParen);
                i += 1;
            }
            ',' => {
                push(toks, Tok::Comma);
                i += 1;
            }
            '=' => {
                push(toks, Tok::Assign);
                i += 1;
            }
            ':' => {
                if !rest.starts_with(":=") {
                    return Err(parse_err(src, i, "expected :="));
                }
                push(toks, Tok::Declare);
                i += 2;
            }
            '"' => {
                let (s, n) = lex_quoted(src, i)?;
                push(toks, Tok::Str(s));
                i += n;
            }
            '`' => {
                let close = rest[1..]
                    .find('`')
                    .ok_or_else(|| parse_err(src, i, "unterminated raw quoted string"))?;
                push(toks, Tok::Str(rest[1..1 + close].to_string()));
                i += close + 2;
            }
            '\'' => {
                let mut chars = rest[1..].chars();
                let (ch, extra) = match chars.next() {
                    Some('\\') => {
                        let e = chars.next().unwrap_or('\\');
                        (unescape_char(e), 1 + e.len_utf8())
                    }
                    Some(ch) => (ch, ch.len_utf8()),
                    None => return Err(parse_err(src, i, "unterminated character constant")),
                };
                if !rest[1 + extra..].starts_with('\'') {
                    return Err(parse_err(src, i, "unterminated character constant"));
                }
                push(toks, Tok::Char(ch as i64));
                i += extra + 2;
            }
            '$' => {
                let n = 1 + rest[1..].len() - rest[1..].trim_start_matches(is_alnum).len();
                push(toks, Tok::Variable(rest[..n].to_string()));
                i += n;
            }
            '.' => {
                let after = &rest[1..];
                if after.starts_with(|c: char| c.is_ascii_digit()) {
                    let n = number_len(rest);
                    push(toks, Tok::Number(rest[..n].to_string()));
                    i += n;
                } else if after.starts_with(is_alnum) {
                    let n = 1 + after.len() - after.trim_start_matches(is_alnum).len();
                    push(toks, Tok::Field(rest[1..n].to_string()));
                    i += n;
                } else {
                    push(toks, Tok::Dot);
                    i += 1;
                }
            }
            '+' | '-' | '0'..='9' => {
                let n = number_len(rest);
                if n == 0 || (n == 1 && !c.is_ascii_digit()) {
                    return Err(parse_err(
                        src,
                        i,
                        &format!("unrecognized character in action: {c:?}"),
                    ));
                }
                push(toks, Tok::Number(rest[..n].to_string()));
                i += n;
            }
            c if is_alnum(c) => {
                let n = rest.len() - rest.trim_start_matches(is_alnum).len();
                push(toks, Tok::Ident(rest[..n].to_string()));
                i += n;
            }
            c => {
                return Err(parse_err(
                    src,
                    i,
                    &format!("unrecognized character in action: {c:?}"),
                ))
            }
        }
    }
}

fn number_len(s: &str) -> usize {
    let n = s
        .char_indices()
        .take_while(|&(i, c)| {
            c.is_ascii_alphanumeric()
                || c == '.'
                || c == '_'
                || ((c == '+' || c == '-') && i == 0)
                || ((c == '+' || c == '-') && i > 0 && matches!(s.as_bytes()[i - 1], b'e' | b'E'))
        })
        .count();
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

fn unescape_char(e: char) -> char {
    match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '0' => '\0',
        other => other,
    }
}

/// Lexes a Go interpreted string literal at `i`; returns the value and its length.
fn lex_quoted(src: &str, i: usize) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = src[i + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, off + 2)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| parse_err(src, i, "invalid syntax"))?;
                        out.push(ch);
                    }
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    other => out.push(unescape_char(other)),
                }
            }
            c => out.push(c),
        }
    }
    Err(parse_err(src, i, "unterminated quoted string"))
}

// ---------------------------------------------------------------- parser

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}` or `{{else if ...}}`: position, and whether more words follow.
    Else(usize, bool),
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    i: usize,
    /// Declared variable names, innermost last, for "undefined variable" checks.
    vars: Vec<String>,
    range_depth: usize,
}

impl Parser<'_> {
    fn err(&self, pos: usize, msg: &str) -> TemplateError {
        parse_err(self.src, pos, msg)
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn peek_non_space(&mut self) -> Token {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
        self.peek().clone()
    }

    fn next_non_space(&mut self) -> Token {
        self.peek_non_space();
        self.next()
    }

    /// Parses nodes until EOF, `{{end}}` or `{{else}}`.
    fn list(&mut self) -> Result<(List, Stop), TemplateError> {
        let mut list = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((list, Stop::Eof)),
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::Left => {
                    let kw = self.peek_non_space();
                    match &kw.tok {
                        Tok::Ident(w) if w == "end" => {
                            self.next();
                            self.expect_right("end")?;
                            return Ok((list, Stop::End(kw.pos)));
                        }
                        Tok::Ident(w) if w == "else" => {
                            self.next();
                            let more = self.peek_non_space().tok != Tok::Right;
                            if !more {
                                self.next();
                            }
                            return Ok((list, Stop::Else(kw.pos, more)));
                        }
                        Tok::Ident(w) if matches!(w.as_str(), "if" | "range" | "with") => {
                            let w = w.clone();
                            self.next();
                            list.push(self.control(&w)?);
                        }
                        Tok::Ident(w) if matches!(w.as_str(), "break" | "continue") => {
                            let w = w.clone();
                            self.next();
                            if self.range_depth == 0 {
                                return Err(
                                    self.err(kw.pos, &format!("{{{{{w}}}}} outside {{{{range}}}}"))
                                );
                            }
                            self.expect_right(&w)?;
                            list.push(if w == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Tok::Ident(w) if matches!(w.as_str(), "define" | "template" | "block") => {
                            return Err(self.err(kw.pos, &format!("{{{{{w}}}}} is not supported")));
                        }
                        _ => {
                            let pipe = self.pipeline(true, "command")?;
                            list.push(Node::Action(pipe));
                        }
                    }
                }
                other => return Err(self.err(t.pos, &format!("unexpected {other:?}"))),
            }
        }
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), TemplateError> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err(self.err(t.pos, &format!("unexpected {} in {ctx}", describe(&t.tok))));
        }
        Ok(())
    }

    /// Parses `if`/`range`/`with` after the keyword.
    fn control(&mut self, kind: &str) -> Result<Node, TemplateError> {
        let mark = self.vars.len();
        let pipe = self.pipeline(true, kind)?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.list()?;
        if kind == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
            Stop::End(_) => None,
            Stop::Else(_, false) => {
                let (else_list, end) = self.list()?;
                match end {
                    Stop::End(_) => Some(else_list),
                    Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
                    Stop::Else(p, _) => return Err(self.err(p, "expected end; found {{else}}")),
                }
            }
            Stop::Else(pos, true) => {
                // `{{else if x}}` / `{{else with x}}`: a nested control whose
                // {{end}} also closes this one.
                let kw = self.next_non_space();
                match kw.tok {
                    Tok::Ident(w)
                        if (w == "if" && kind == "if") || (w == "with" && kind == "with") =>
                    {
                        Some(vec![self.control(&w)?])
                    }
                    _ => return Err(self.err(pos, "unexpected {{else}} arguments")),
                }
            }
        };
        self.vars.truncate(mark);
        let branch = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    /// Parses a pipeline up to `}}` (or `)` when `top` is false).
    fn pipeline(&mut self, top: bool, ctx: &str) -> Result<Pipe, TemplateError> {
        let start = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos: start,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$i, $e :=`, `$x =`.
        let save = self.i;
        if let Tok::Variable(first) = self.peek_non_space().tok {
            let first_pos = self.next().pos;
            let sep = self.peek_non_space();
            match sep.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = sep.tok == Tok::Assign;
                    pipe.decl.push(first);
                }
                Tok::Comma => {
                    self.next();
                    let second = self.next_non_space();
                    let Tok::Variable(second_name) = second.tok else {
                        return Err(
                            self.err(second.pos, &format!("too many declarations in {ctx}"))
                        );
                    };
                    let decl = self.next_non_space();
                    if decl.tok != Tok::Declare || ctx != "range" {
                        return Err(self.err(decl.pos, &format!("too many declarations in {ctx}")));
                    }
                    pipe.decl.push(first);
                    pipe.decl.push(second_name);
                }
                _ => self.i = save,
            }
            if pipe.is_assign {
                if !self.vars.contains(&pipe.decl[0]) {
                    return Err(self.err(
                        first_pos,
                        &format!("undefined variable \"{}\"", pipe.decl[0]),
                    ));
                }
            } else {
                self.vars.extend(pipe.decl.iter().cloned());
            }
        }
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right if top => {
                    self.next();
                    break;
                }
                Tok::RParen if !top => {
                    self.next();
                    break;
                }
                Tok::Right | Tok::RParen | Tok::Eof => {
                    return Err(
                        self.err(t.pos, &format!("unexpected {} in {ctx}", describe(&t.tok)))
                    );
                }
                _ => {}
            }
            let cmd = self.command()?;
            pipe.cmds.push(cmd);
            let t = self.peek_non_space();
            if t.tok == Tok::Pipe {
                self.next();
                let after = self.peek_non_space();
                if matches!(after.tok, Tok::Right | Tok::RParen) {
                    return Err(self.err(after.pos, "missing command"));
                }
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err(start, &format!("missing value for {ctx}")));
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut args = Vec::new();
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right | Tok::RParen | Tok::Pipe | Tok::Eof => break,
                _ => args.push(self.operand()?),
            }
            // Operands must be separated by spaces.
            match self.peek().tok {
                Tok::Space | Tok::Right | Tok::RParen | Tok::Pipe => {}
                ref other => {
                    let pos = self.peek().pos;
                    return Err(
                        self.err(pos, &format!("unexpected {} in operand", describe(other)))
                    );
                }
            }
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let t = self.next_non_space();
        let kind = match t.tok {
            Tok::Field(name) => Term::Field(vec![name]),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.err(t.pos, &format!("undefined variable \"{name}\"")));
                }
                Term::Variable(name, Vec::new())
            }
            Tok::Dot => Term::Dot,
            Tok::Str(s) => Term::Str(s),
            Tok::Char(c) => Term::Int(c),
            Tok::Number(n) => parse_number(&n)
                .ok_or_else(|| self.err(t.pos, &format!("illegal number syntax: {n:?}")))?,
            Tok::Ident(w) => match w.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ if FUNCS.contains(&w.as_str()) => Term::Ident(w),
                _ => return Err(self.err(t.pos, &format!("function \"{w}\" not defined"))),
            },
            Tok::LParen => {
                let pipe = self.pipeline(false, "parenthesized pipeline")?;
                Term::Pipe(Box::new(pipe), Vec::new())
            }
            other => {
                return Err(self.err(
                    t.pos,
                    &format!("unexpected {} in operand", describe(&other)),
                ))
            }
        };
        // Field chains directly following a term: `.A.B`, `$x.A`, `(...).A`.
        let mut kind = kind;
        while let Tok::Field(name) = &self.peek().tok {
            let name = name.clone();
            self.next();
            match &mut kind {
                Term::Field(chain) | Term::Variable(_, chain) | Term::Pipe(_, chain) => {
                    chain.push(name)
                }
                Term::Dot => kind = Term::Field(vec![name]),
                _ => {
                    return Err(self.err(
                        t.pos,
                        &format!(
                            "unexpected . after term {:?}",
                            &self.src[t.pos..self.peek().pos]
                        ),
                    ))
                }
            }
        }
        let end = self.peek().pos;
        Ok(Operand {
            pos: t.pos,
            text: self.src[t.pos..end.max(t.pos)].trim_end().to_string(),
            kind,
        })
    }
}

fn parse_number(n: &str) -> Option<Term> {
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix_parsed = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        i64::from_str_radix(b, 2).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(v) = radix_parsed {
        return Some(Term::Int(if neg { -v } else { v }));
    }
    clean.parse::<f64>().ok().map(Term::Float)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Right => "\"}}\"".to_string(),
        Tok::RParen => "\")\"".to_string(),
        Tok::Eof => "EOF".to_string(),
        Tok::Pipe => "\"|\"".to_string(),
        Tok::Ident(w) => format!("<{w}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Variable(v) => format!("<{v}>"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Number(n) => format!("<{n}>"),
        Tok::Declare => "\":=\"".to_string(),
        Tok::Assign => "\"=\"".to_string(),
        Tok::Comma => "\",\"".to_string(),
        Tok::LParen => "\"(\"".to_string(),
        Tok::Dot => "<.>".to_string(),
        other => format!("{other:?}"),
    }
}
