//! The functions templates can call: Go's builtins (`index`, `len`, `eq`,
//! `printf`, ...) and docker's additions (`json`, `join`, `split`, `upper`,
//! `lower`, `title`, `pad`, `truncate`).

use std::fmt::Write as _;

use super::value::Value;

/// Functions docker swaps for pass-through versions when rendering table headers.
pub const HEADER_IDENTITY: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "truncate",
];

pub enum CallError {
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

pub fn call_builtin(name: &str, vals: &[Value]) -> Result<Value, CallError> {
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
