//! Executes a parsed template against a [`Value`], with Go's semantics for
//! field lookup, truthiness, pipelines and the builtin and docker functions.

use std::fmt::Write as _;

use super::parse::{Branch, Command, List, Node, Operand, Pipe, Term};
use super::value::Value;
use super::{ExecOptions, TemplateError};

/// How a list finished: normally, or through `{{break}}`/`{{continue}}`.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub struct Exec<'a> {
    pub src: &'a str,
    pub opts: &'a ExecOptions,
    pub vars: Vec<(String, Value)>,
    pub out: String,
}

type R<T> = Result<T, TemplateError>;

impl Exec<'_> {
    fn err(&self, pos: usize, at: &str, msg: impl std::fmt::Display) -> TemplateError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = pos - before.rfind('\n').map_or(0, |i| i + 1);
        TemplateError(format!(
            "template: :{line}:{col}: executing \"\" at <{at}>: {msg}"
        ))
    }

    pub fn run(&mut self, dot: &Value, list: &List) -> R<()> {
        self.walk(dot, list).map(|_| ())
    }

    fn walk(&mut self, dot: &Value, list: &List) -> R<Flow> {
        for node in list {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.eval_pipe(dot, pipe, true)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.to_go_string());
                    }
                }
                Node::If(b) => {
                    let mark = self.vars.len();
                    let v = self.eval_pipe(dot, &b.pipe, true)?;
                    let flow = if v.truth() {
                        self.walk(dot, &b.list)?
                    } else if let Some(e) = &b.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(b) => {
                    let mark = self.vars.len();
                    let v = self.eval_pipe(dot, &b.pipe, true)?;
                    let flow = if v.truth() {
                        self.walk(&v, &b.list)?
                    } else if let Some(e) = &b.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => self.range(dot, b)?,
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, b: &Branch) -> R<()> {
        let mark = self.vars.len();
        let v = self.eval_pipe(dot, &b.pipe, false)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Object(o) => {
                let mut entries: Vec<&(String, Value)> = o.iter().collect();
                entries.sort_by(|x, y| x.0.cmp(&y.0));
                entries
                    .into_iter()
                    .map(|(k, e)| (Value::String(k.clone()), e.clone()))
                    .collect()
            }
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Missing | Value::Null => Vec::new(),
            other => {
                let at = self.src[b.pipe.pos..]
                    .split("}}")
                    .next()
                    .unwrap_or("")
                    .trim();
                return Err(self.err(
                    b.pipe.pos,
                    at,
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        for (key, elem) in items {
            let inner = self.vars.len();
            match b.pipe.decl.as_slice() {
                [one] => self.vars.push((one.clone(), elem.clone())),
                [k, e] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((e.clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&elem, &b.list)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn eval_pipe(&mut self, dot: &Value, pipe: &Pipe, assign: bool) -> R<Value> {
        let mut last: Option<Value> = None;
        for cmd in &pipe.cmds {
            last = Some(self.eval_cmd(dot, cmd, last)?);
        }
        let v = last.unwrap_or(Value::Missing);
        if assign {
            for name in &pipe.decl {
                if pipe.is_assign {
                    if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        slot.1 = v.clone();
                    }
                } else {
                    self.vars.push((name.clone(), v.clone()));
                }
            }
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, dot: &Value, cmd: &Command, last: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match &first.kind {
            Term::Field(chain) => self.eval_chain(dot, dot.clone(), chain, rest, last, first),
            Term::Variable(name, chain) => {
                let base = self.var(name, first)?;
                if chain.is_empty() {
                    self.no_args(first, rest, &last)?;
                    return Ok(base);
                }
                self.eval_chain(dot, base, chain, rest, last, first)
            }
            Term::Pipe(pipe, chain) => {
                let base = self.eval_pipe(dot, pipe, false)?;
                if chain.is_empty() {
                    self.no_args(first, rest, &last)?;
                    return Ok(base);
                }
                self.eval_chain(dot, base, chain, rest, last, first)
            }
            Term::Ident(name) => self.call(dot, name, rest, last, first),
            Term::Nil => Err(self.err(first.pos, &first.text, "nil is not a command")),
            _ => {
                self.no_args(first, rest, &last)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn no_args(&self, node: &Operand, rest: &[Operand], last: &Option<Value>) -> R<()> {
        if !rest.is_empty() || last.is_some() {
            return Err(self.err(
                node.pos,
                &node.text,
                format!("can't give argument to non-function {}", node.text),
            ));
        }
        Ok(())
    }

    fn var(&self, name: &str, node: &Operand) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(node.pos, &node.text, format!("undefined variable: {name}")))
    }

    fn eval_arg(&mut self, dot: &Value, op: &Operand) -> R<Value> {
        Ok(match &op.kind {
            Term::Field(chain) => self.eval_chain(dot, dot.clone(), chain, &[], None, op)?,
            Term::Variable(name, chain) => {
                let base = self.var(name, op)?;
                if chain.is_empty() {
                    base
                } else {
                    self.eval_chain(dot, base, chain, &[], None, op)?
                }
            }
            Term::Pipe(pipe, chain) => {
                let base = self.eval_pipe(dot, pipe, false)?;
                if chain.is_empty() {
                    base
                } else {
                    self.eval_chain(dot, base, chain, &[], None, op)?
                }
            }
            Term::Dot => dot.clone(),
            Term::Nil => Value::Null,
            Term::Bool(b) => Value::Bool(*b),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Str(s) => Value::String(s.clone()),
            Term::Ident(name) => self.call(dot, name, &[], None, op)?,
        })
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        mut v: Value,
        chain: &[String],
        args: &[Operand],
        last: Option<Value>,
        node: &Operand,
    ) -> R<Value> {
        let n = chain.len();
        let mut last = last;
        for (i, name) in chain.iter().enumerate() {
            let is_last = i + 1 == n;
            let (a, l) = if is_last {
                (args, last.take())
            } else {
                (&[][..], None)
            };
            v = self.eval_field(dot, name, v, a, l, node)?;
        }
        Ok(v)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        receiver: Value,
        args: &[Operand],
        last: Option<Value>,
        node: &Operand,
    ) -> R<Value> {
        let has_args = !args.is_empty() || last.is_some();
        match &receiver {
            Value::Struct(s) => {
                if let Some(m) = s.get_method(name) {
                    let m = m.clone();
                    let mut vals = Vec::with_capacity(args.len() + 1);
                    for a in args {
                        vals.push(self.eval_arg(dot, a)?);
                    }
                    vals.extend(last);
                    return m(&vals).map_err(|e| {
                        self.err(node.pos, &node.text, format!("error calling {name}: {e}"))
                    });
                }
                match s.get(name) {
                    Some(v) if !has_args => Ok(v.clone()),
                    Some(_) => Err(self.err(
                        node.pos,
                        &node.text,
                        format!("{name} has arguments but cannot be invoked as function"),
                    )),
                    None if self.opts.header => Ok(Value::Missing),
                    None => Err(self.err(
                        node.pos,
                        &node.text,
                        format!("can't evaluate field {name} in type {}", s.type_name),
                    )),
                }
            }
            Value::Object(o) => {
                if has_args {
                    return Err(self.err(
                        node.pos,
                        &node.text,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                match o.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => Ok(v.clone()),
                    None if self.opts.missing_key_error => Err(self.err(
                        node.pos,
                        &node.text,
                        format!("map has no entry for key \"{name}\""),
                    )),
                    None => Ok(Value::Missing),
                }
            }
            Value::Missing => {
                if self.opts.missing_key_error {
                    return Err(self.err(
                        node.pos,
                        &node.text,
                        format!("nil data; no entry for key \"{name}\""),
                    ));
                }
                Ok(Value::Missing)
            }
            Value::Null => Err(self.err(
                node.pos,
                &node.text,
                format!("nil pointer evaluating interface {{}}.{name}"),
            )),
            other => Err(self.err(
                node.pos,
                &node.text,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Operand],
        last: Option<Value>,
        node: &Operand,
    ) -> R<Value> {
        // `and`/`or` short-circuit, so their operands are evaluated lazily.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(last.is_some());
            if total == 0 {
                return Err(self.err(
                    node.pos,
                    name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.truth() != (name == "and") {
                    return Ok(v);
                }
            }
            if let Some(l) = last {
                v = l;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        vals.extend(last);
        if self.opts.header && HEADER_IDENTITY.contains(&name) {
            return Ok(Value::String(
                vals.first().map(Value::to_go_string).unwrap_or_default(),
            ));
        }
        call_builtin(name, &vals).map_err(|e| match e {
            CallError::Arity(msg) => self.err(node.pos, name, msg),
            CallError::Failed(msg) => {
                self.err(node.pos, name, format!("error calling {name}: {msg}"))
            }
        })
    }
}

/// Functions docker swaps for pass-through versions when rendering table headers.
const HEADER_IDENTITY: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "truncate",
];

enum CallError {
    Arity(String),
    Failed(String),
}

fn arity(name: &str, vals: &[Value], want: usize) -> Result<(), CallError> {
    if vals.len() != want {
        return Err(CallError::Arity(format!(
            "wrong number of args for {name}: want {want} got {}",
            vals.len()
        )));
    }
    Ok(())
}

fn want_str<'v>(v: &'v Value, name: &str) -> Result<std::borrow::Cow<'v, str>, CallError> {
    match v {
        Value::String(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Missing | Value::Null | Value::Struct(_) | Value::Array(_) | Value::Object(_) => {
            Err(CallError::Failed(format!(
                "wrong type for value; expected string; got {} (in {name})",
                v.type_name()
            )))
        }
        other => Ok(std::borrow::Cow::Owned(other.to_go_string())),
    }
}

fn want_int(v: &Value) -> Result<i64, CallError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(CallError::Failed(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

fn call_builtin(name: &str, vals: &[Value]) -> Result<Value, CallError> {
    match name {
        "not" => {
            arity(name, vals, 1)?;
            Ok(Value::Bool(!vals[0].truth()))
        }
        "len" => {
            arity(name, vals, 1)?;
            let n = match &vals[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                other => {
                    return Err(CallError::Failed(format!(
                        "len of type {}",
                        other.type_name()
                    )))
                }
            };
            Ok(Value::Int(n as i64))
        }
        "index" => {
            if vals.is_empty() {
                return Err(CallError::Arity(
                    "wrong number of args for index: want at least 1 got 0".to_string(),
                ));
            }
            let mut v = vals[0].clone();
            for key in &vals[1..] {
                v = match (&v, key) {
                    (Value::Object(o), Value::String(k)) => o
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| v.clone())
                        // A missing key yields the zero value; docker's typed
                        // maps (labels) are string maps, so that is "".
                        .unwrap_or_else(|| Value::String(String::new())),
                    (Value::Array(a), idx) => {
                        let i = want_int(idx)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| a.get(i))
                            .cloned()
                            .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))?
                    }
                    (Value::Missing | Value::Null, _) => {
                        return Err(CallError::Failed("index of untyped nil".to_string()))
                    }
                    (other, _) => {
                        return Err(CallError::Failed(format!(
                            "can't index item of type {}",
                            other.type_name()
                        )))
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            if vals.is_empty() {
                return Err(CallError::Arity(
                    "wrong number of args for slice: want at least 1 got 0".to_string(),
                ));
            }
            let idx: Vec<i64> = vals[1..].iter().map(want_int).collect::<Result<_, _>>()?;
            let len = match &vals[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                other => {
                    return Err(CallError::Failed(format!(
                        "can't slice item of type {}",
                        other.type_name()
                    )))
                }
            } as i64;
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if lo < 0 || hi < lo || hi > len {
                return Err(CallError::Failed(format!("index out of range: {hi}")));
            }
            let (lo, hi) = (lo as usize, hi as usize);
            Ok(match &vals[0] {
                Value::String(s) => Value::String(s.get(lo..hi).unwrap_or("").to_string()),
                Value::Array(a) => Value::Array(a[lo..hi].to_vec()),
                _ => Value::Missing,
            })
        }
        "print" => Ok(Value::String(go_sprint(vals))),
        "println" => {
            let parts: Vec<String> = vals.iter().map(Value::to_go_string).collect();
            Ok(Value::String(parts.join(" ") + "\n"))
        }
        "printf" => {
            let Some(fmt) = vals.first() else {
                return Err(CallError::Arity(
                    "wrong number of args for printf: want at least 1 got 0".to_string(),
                ));
            };
            Ok(Value::String(go_sprintf(&want_str(fmt, name)?, &vals[1..])))
        }
        "eq" => {
            if vals.len() < 2 {
                return Err(CallError::Failed(
                    "missing argument for comparison".to_string(),
                ));
            }
            Ok(Value::Bool(vals[1..].iter().any(|v| equal(&vals[0], v))))
        }
        "ne" => {
            arity(name, vals, 2)?;
            Ok(Value::Bool(!equal(&vals[0], &vals[1])))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, vals, 2)?;
            let ord = compare(&vals[0], &vals[1])?;
            Ok(Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        "json" => {
            arity(name, vals, 1)?;
            Ok(Value::String(vals[0].to_json(false)))
        }
        "split" => {
            arity(name, vals, 2)?;
            let s = want_str(&vals[0], name)?;
            let sep = want_str(&vals[1], name)?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_ref()).map(Value::from).collect()
            };
            Ok(Value::Array(parts))
        }
        "join" => {
            arity(name, vals, 2)?;
            let sep = want_str(&vals[1], name)?;
            Ok(Value::String(match &vals[0] {
                Value::Missing | Value::Null => String::new(),
                Value::Array(a) => a
                    .iter()
                    .map(Value::to_go_string)
                    .collect::<Vec<_>>()
                    .join(&sep),
                Value::Object(o) => {
                    let mut vs: Vec<String> = o.iter().map(|(_, v)| v.to_go_string()).collect();
                    vs.sort();
                    vs.join(&sep)
                }
                other => {
                    return Err(CallError::Failed(format!(
                        "expected slice, got {}",
                        other.type_name()
                    )))
                }
            }))
        }
        "title" => {
            arity(name, vals, 1)?;
            Ok(Value::String(go_title(&want_str(&vals[0], name)?)))
        }
        "lower" => {
            arity(name, vals, 1)?;
            Ok(Value::String(want_str(&vals[0], name)?.to_lowercase()))
        }
        "upper" => {
            arity(name, vals, 1)?;
            Ok(Value::String(want_str(&vals[0], name)?.to_uppercase()))
        }
        "pad" => {
            arity(name, vals, 3)?;
            let s = want_str(&vals[0], name)?;
            if s.is_empty() {
                return Ok(Value::String(String::new()));
            }
            let pre = usize::try_from(want_int(&vals[1])?).unwrap_or(0);
            let post = usize::try_from(want_int(&vals[2])?).unwrap_or(0);
            Ok(Value::String(format!(
                "{}{s}{}",
                " ".repeat(pre),
                " ".repeat(post)
            )))
        }
        "truncate" => {
            arity(name, vals, 2)?;
            let s = want_str(&vals[0], name)?;
            let n = usize::try_from(want_int(&vals[1])?).unwrap_or(0);
            if s.len() < n {
                return Ok(Value::String(s.into_owned()));
            }
            // Go slices bytes; stay on a char boundary to keep valid UTF-8.
            let mut end = n;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Ok(Value::String(s[..end].to_string()))
        }
        "urlquery" | "html" | "js" | "call" => Err(CallError::Failed(format!(
            "function {name} is not supported"
        ))),
        other => Err(CallError::Failed(format!(
            "function \"{other}\" not defined"
        ))),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null | Value::Missing, Value::Null | Value::Missing) => true,
        _ => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, CallError> {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return Ok(x.cmp(y));
    }
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x
            .partial_cmp(&y)
            .ok_or_else(|| CallError::Failed("incompatible types for comparison".to_string())),
        _ => Err(CallError::Failed(
            "incompatible types for comparison".to_string(),
        )),
    }
}

/// `fmt.Sprint`: a space between operands when neither side is a string.
fn go_sprint(vals: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            let prev_str = matches!(vals[i - 1], Value::String(_));
            let this_str = matches!(v, Value::String(_));
            if !prev_str && !this_str {
                out.push(' ');
            }
        }
        out.push_str(&v.to_go_string());
    }
    out
}

/// strings.Title: upper-cases the first letter of each word.
fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: flags `-+0 `, width, precision and the
/// verbs `v s d q t f x X %`.
fn go_sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let body = match verb {
            'd' => match as_number(arg) {
                Some(n) => {
                    let s = format!("{}", n as i64);
                    if plus && n >= 0.0 {
                        format!("+{s}")
                    } else {
                        s
                    }
                }
                None => format!("%!d({})", arg.to_go_string()),
            },
            'f' => match as_number(arg) {
                Some(n) => format!("{n:.*}", precision.unwrap_or(6)),
                None => format!("%!f({})", arg.to_go_string()),
            },
            'x' | 'X' => match arg {
                Value::Int(i) => {
                    let s = format!("{i:x}");
                    if verb == 'X' {
                        s.to_uppercase()
                    } else {
                        s
                    }
                }
                other => other
                    .to_go_string()
                    .bytes()
                    .map(|b| {
                        if verb == 'X' {
                            format!("{b:02X}")
                        } else {
                            format!("{b:02x}")
                        }
                    })
                    .collect(),
            },
            'q' => {
                let mut s = String::new();
                super::value::write_json_string(&mut s, &arg.to_go_string(), false);
                s
            }
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => format!("%!t({})", other.to_go_string()),
            },
            _ => {
                let s = arg.to_go_string();
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if minus {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', w - len));
        } else {
            let pad = if zero && matches!(verb, 'd' | 'f' | 'x' | 'X') {
                '0'
            } else {
                ' '
            };
            out.extend(std::iter::repeat_n(pad, w - len));
            out.push_str(&body);
        }
    }
    for extra in args {
        let _ = write!(
            out,
            "%!(EXTRA {}={})",
            extra.type_name(),
            extra.to_go_string()
        );
    }
    out
}
