//! The data a template runs on: JSON-like values that keep object key order
//! (so `{{json .Config}}` prints fields in the daemon's order, as docker does)
//! plus "structs" that stand in for docker's Go formatter contexts.

use std::fmt::{self, Write as _};
use std::rc::Rc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A method on a struct value, called as `{{.Label "key"}}`.
pub type Method = Rc<dyn Fn(&[Value]) -> Result<Value, String>>;

/// A named record with computed fields, like docker's `*formatter.ContainerContext`.
pub struct Struct {
    /// Go type name used in error messages ("*formatter.ContainerContext").
    pub type_name: &'static str,
    /// Field values, in the order they are listed.
    pub fields: Vec<(String, Value)>,
    /// Methods that take arguments; they are not part of `{{json .}}`.
    pub methods: Vec<(&'static str, Method)>,
    /// Fields whose `{{json .}}` value differs from their template value
    /// (docker's contexts that check a `json` flag, like search's "[OK]").
    pub json_overrides: Vec<(String, Value)>,
}

impl Struct {
    pub fn new(type_name: &'static str) -> Self {
        Struct {
            type_name,
            fields: Vec::new(),
            methods: Vec::new(),
            json_overrides: Vec::new(),
        }
    }

    /// Sets the value a field has when the whole struct is marshalled to JSON.
    pub fn json_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.json_overrides.push((name.to_string(), value.into()));
        self
    }

    /// Adds a field (builder style).
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.push((name.to_string(), value.into()));
        self
    }

    /// Adds a method taking arguments (builder style).
    pub fn method(mut self, name: &'static str, f: Method) -> Self {
        self.methods.push((name, f));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn get_method(&self, name: &str) -> Option<&Method> {
        self.methods
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, m)| m)
    }
}

/// A template value.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's invalid value: what a missing map key yields; prints `<no value>`.
    #[default]
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    /// A JSON object; keys keep their source order.
    Object(Vec<(String, Value)>),
    Struct(Rc<Struct>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json(false))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<Struct> for Value {
    fn from(s: Struct) -> Self {
        Value::Struct(Rc::new(s))
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number_value(n),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect())
            }
        }
    }
}

fn number_value(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Value {
    /// Parses JSON text keeping object key order.
    pub fn from_json(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Go template truthiness: false, 0, nil, and empty strings/arrays/maps are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The Go type name shown in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<no value>",
            Value::Null => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Array(_) => "[]interface {}",
            Value::Object(_) => "map[string]interface {}",
            Value::Struct(s) => s.type_name,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Prints the value as Go's `fmt.Print` would.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out);
        out
    }

    fn write_go(&self, out: &mut String) {
        match self {
            Value::Missing => out.push_str("<no value>"),
            Value::Null => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&go_float(*f)),
            Value::String(s) => out.push_str(s),
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                // Go prints maps with sorted keys.
                let mut entries: Vec<&(String, Value)> = o.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                out.push_str("map[");
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                out.push('{');
                for (i, (_, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push('}');
            }
        }
    }

    /// Serializes as JSON. `escape_html` mirrors Go's `json.Marshal` default
    /// (`<`, `>`, `&` as `\u003c`...), which docker's struct contexts go through.
    pub fn to_json(&self, escape_html: bool) -> String {
        let mut out = String::new();
        self.write_json(&mut out, escape_html);
        out
    }

    fn write_json(&self, out: &mut String, escape_html: bool) {
        match self {
            Value::Missing | Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                if f.is_finite() {
                    out.push_str(
                        &serde_json::Number::from_f64(*f)
                            .map_or_else(|| "null".to_string(), |n| n.to_string()),
                    );
                } else {
                    out.push_str("null");
                }
            }
            Value::String(s) => write_json_string(out, s, escape_html),
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out, escape_html);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k, escape_html);
                    out.push(':');
                    v.write_json(out, escape_html);
                }
                out.push('}');
            }
            Value::Struct(s) => {
                // docker marshals its contexts through a map: keys sorted, HTML escaped.
                let mut fields: Vec<&(String, Value)> = s.fields.iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                for (i, (k, v)) in fields.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k, true);
                    out.push(':');
                    let v = s
                        .json_overrides
                        .iter()
                        .find(|(name, _)| name == k)
                        .map_or(v, |(_, o)| o);
                    v.write_json(out, true);
                }
                out.push('}');
            }
        }
    }
}

/// Go's `%v` for a float64 (strconv 'g' with the shortest representation).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sci = format!("{f:e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let (m, _) = sci.split_once('e').unwrap_or((&sci, ""));
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Writes `s` as a JSON string the way Go's encoder does.
pub fn write_json_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            // Later duplicates win, as in Go's decoder.
            if let Some(slot) = entries.iter_mut().find(|(key, _)| *key == k) {
                slot.1 = v;
            } else {
                entries.push((k, v));
            }
        }
        Ok(Value::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order() {
        let v = Value::from_json(r#"{"b":1,"a":[true,null,"x"],"c":{"z":1.5,"y":"<"}}"#)
            .expect("valid json");
        assert_eq!(
            v.to_json(false),
            r#"{"b":1,"a":[true,null,"x"],"c":{"z":1.5,"y":"<"}}"#
        );
        assert_eq!(
            v.to_go_string(),
            "map[a:[true <nil> x] b:1 c:map[y:< z:1.5]]"
        );
    }

    #[test]
    fn struct_json_is_sorted_and_escaped() {
        let s = Struct::new("*x").field("Tag", "<none>").field("ID", "abc");
        assert_eq!(
            Value::from(s).to_json(false),
            r#"{"ID":"abc","Tag":"\u003cnone\u003e"}"#
        );
    }

    #[test]
    fn truthiness() {
        assert!(!Value::Missing.truth());
        assert!(!Value::Int(0).truth());
        assert!(Value::Int(2).truth());
        assert!(!Value::String(String::new()).truth());
        assert!(!Value::Array(vec![]).truth());
        assert!(Value::Object(vec![("a".into(), Value::Null)]).truth());
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(Value::Float(0.5).to_go_string(), "0.5");
        assert_eq!(Value::Float(1e21).to_go_string(), "1e+21");
        assert_eq!(Value::Float(123456.0).to_go_string(), "123456");
    }
}
