//! Executes a parsed template against a [`Value`], with Go's semantics for
//! field lookup, truthiness, pipelines and the builtin and docker functions.

use super::funcs::{call_builtin, CallError, HEADER_IDENTITY};
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
