//! What the operations tests share: `shop-status --json` read into a [`Status`] (with a small
//! JSON reader, so the suite needs no new dependency), the load mode's `summary` line read into
//! a [`Summary`], and the paths of `shop-status` and `scripts/launch.sh`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

use zk_coffee_tests::*;

// ---------------------------------------------------------------------------------------------
// Paths

/// `scripts/launch.sh`.
pub fn launch_script() -> PathBuf {
    workspace_root().join("scripts").join("launch.sh")
}

/// The built `shop-status`; panics (like the harness does for the other roles) when it is
/// missing or older than its sources.
pub fn shop_status_bin() -> PathBuf {
    Role::ShopStatus.path()
}

// ---------------------------------------------------------------------------------------------
// shop-status

/// `shop-status --json` as read back.
#[derive(Debug, Clone)]
pub struct Status {
    pub json: Json,
}

impl Status {
    /// Runs `PREFIX... shop-status --zk CONNECT [--shop SHOP] --json` (the prefix runs it
    /// elsewhere, e.g. `ip netns exec NS`) and parses its output; panics unless it exits 0.
    pub fn read_with(prefix: &[&OsStr], connect: &str, shop: Option<&str>) -> Status {
        let bin = shop_status_bin();
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        clean_env(&mut cmd).args(["--zk", connect, "--connect-timeout", "10", "--json"]).env("RUST_LOG", "error");
        if let Some(shop) = shop {
            cmd.args(["--shop", shop]);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run shop-status: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "shop-status failed ({}):\n{text}{}", out.status, String::from_utf8_lossy(&out.stderr));
        let line = text.lines().last().unwrap_or_default();
        let json = Json::parse(line).unwrap_or_else(|e| panic!("shop-status --json printed no JSON ({e}): {text:?}"));
        Status { json }
    }

    /// `shop-status --json` of the shop at `connect` (`--shop SHOP` if given).
    pub fn read(connect: &str, shop: Option<&str>) -> Status {
        Status::read_with(&[], connect, shop)
    }

    /// The menu, in menu order.
    pub fn menu(&self) -> Vec<String> {
        self.json["menu"].array().iter().map(|c| c.str().to_owned()).collect()
    }

    /// The baristas on shift, in the order shop-status lists them.
    pub fn on_shift(&self) -> Vec<String> {
        self.json["on_shift"].array().iter().map(|b| b["name"].str().to_owned()).collect()
    }

    /// The registration facts of barista `name` on shift (panics if it is not on shift).
    pub fn facts(&self, name: &str) -> &Json {
        let b = self.json["on_shift"].array().iter().find(|b| b["name"].str() == name);
        &b.unwrap_or_else(|| panic!("{name} is not on shift: {:?}", self.on_shift()))["facts"]
    }

    /// The owners of the orphaned buckets.
    pub fn orphans(&self) -> Vec<String> {
        self.json["orphans"].array().iter().map(|o| o["owner"].str().to_owned()).collect()
    }

    /// Orders waiting in every bucket, on shift or orphaned.
    pub fn queued(&self) -> u64 {
        let on_shift = self.json["on_shift"].array().iter();
        on_shift.chain(self.json["orphans"].array()).map(|b| b["queue"]["orders"].u64()).sum()
    }

    /// Everything sold.
    pub fn sales_total(&self) -> u64 {
        self.json["sales"]["total"].u64()
    }

    /// Sales per coffee.
    pub fn sales_per_coffee(&self) -> BTreeMap<String, u64> {
        self.json["sales"]["per_coffee"].object().iter().map(|(c, n)| (c.clone(), n.u64())).collect()
    }

    /// Sales per barista (each ledger's counts added up).
    pub fn sales_per_barista(&self) -> BTreeMap<String, u64> {
        let ledgers = self.json["sales"]["per_barista"].object();
        ledgers.iter().map(|(b, counts)| (b.clone(), counts.object().values().map(Json::u64).sum())).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The load mode's summary

/// The last stdout line of a load run: `summary key=value ...`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub fields: BTreeMap<String, String>,
    pub line: String,
}

impl Summary {
    /// Finds the `summary` line (it must be the last stdout line) and reads its fields.
    pub fn from_stdout(stdout: &[String]) -> Summary {
        let line = stdout.last().unwrap_or_else(|| panic!("a load run printed nothing on stdout"));
        let rest = line.strip_prefix("summary ").unwrap_or_else(|| panic!("the last stdout line is not the summary: {line:?}"));
        let fields = rest
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap_or_else(|| panic!("{kv:?} is not key=value in {line:?}")))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Summary { fields, line: line.clone() }
    }

    /// A field's raw text.
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).unwrap_or_else(|| panic!("no {key}= in {}", self.line))
    }

    /// A count field.
    pub fn count(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or_else(|_| panic!("{key} is not a count in {}", self.line))
    }

    /// A figure (throughput, milliseconds, seconds).
    pub fn figure(&self, key: &str) -> f64 {
        self.get(key).parse().unwrap_or_else(|_| panic!("{key} is not a number in {}", self.line))
    }

    /// `per_barista=a:n,b:m`.
    pub fn per_barista(&self) -> BTreeMap<String, u64> {
        let text = self.get("per_barista");
        if text == "-" {
            return BTreeMap::new();
        }
        text.split(',')
            .map(|item| {
                let (b, n) = item.rsplit_once(':').unwrap_or_else(|| panic!("{item:?} is not barista:count"));
                (b.to_owned(), n.parse().unwrap_or_else(|_| panic!("{item:?} has no count")))
            })
            .collect()
    }

    /// Every outcome count other than `served` (gave_up, no_barista, failed, ... and any
    /// added later): every `key=N` field except `visits` and `served`.
    pub fn other_outcomes(&self) -> BTreeMap<String, u64> {
        let figures = ["visits", "served", "elapsed_s", "throughput", "p50_ms", "p95_ms", "p99_ms", "max_ms", "per_barista"];
        self.fields
            .iter()
            .filter(|(k, _)| !figures.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.parse().unwrap_or_else(|_| panic!("{k}={v} is not a count in {}", self.line))))
            .collect()
    }
}

/// How many orders each of the named processes' logs says it served (`served COFFEE (ORDER)`
/// lines), summed per name.
pub fn served_lines<'a>(logs: impl IntoIterator<Item = (&'a str, &'a [String])>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (name, log) in logs {
        *counts.entry(name.to_owned()).or_default() += served_orders(log).len() as u64;
    }
    counts
}

/// The command line of a live process (empty for a zombie or a gone one).
pub fn cmdline(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// stdout and stderr of a finished command as text, for messages.
pub fn show(out: &Output) -> String {
    format!("{}\nstdout:\n{}stderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader

/// A JSON value. Indexing a missing key or reading a value as the wrong type panics with the
/// value, which is what a test wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

static NULL: Json = Json::Null;

impl std::ops::Index<&str> for Json {
    type Output = Json;
    fn index(&self, key: &str) -> &Json {
        match self {
            Json::Obj(map) => map.get(key).unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            _ => panic!("not an object (looking for {key:?}): {self:?}"),
        }
    }
}

impl Json {
    /// Parses one JSON text.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at byte {}", p.i));
        }
        Ok(v)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The value at `key` of an object, `Null` if absent.
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(map) => map.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    pub fn u64(&self) -> u64 {
        match self {
            Json::Num(n) if *n >= 0.0 && n.fract() == 0.0 => *n as u64,
            _ => panic!("not a whole number: {self:?}"),
        }
    }

    pub fn array(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }

    pub fn object(&self) -> &BTreeMap<String, Json> {
        match self {
            Json::Obj(m) => m,
            _ => panic!("not an object: {self:?}"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", b as char, self.i))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(map));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(map));
                        }
                        _ => return Err(format!("expected , or }} at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected , or ] at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || b"+-.eE".contains(&self.s[self.i])) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                text.parse().map(Json::Num).map_err(|_| format!("bad number {text:?} at byte {start}"))
            }
            None => Err("unexpected end".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else { return Err("unterminated string".into()) };
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err("unterminated escape".into()) };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).map_err(|e| e.to_string())?, 16)
                                .map_err(|e| e.to_string())?;
                            self.i += 4;
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

#[test]
fn the_json_reader_reads_what_shop_status_writes() {
    let j = Json::parse(r#"{"menu":["a","b\"c"],"n":null,"x":{"orders":3,"oldest_ms":null},"t":true,"e":[], "u":"\u0041"}"#)
        .expect("valid JSON");
    assert_eq!(j["menu"].array()[1].str(), "b\"c");
    assert_eq!(j["x"]["orders"].u64(), 3);
    assert!(j["n"].is_null() && j.get("missing").is_null());
    assert_eq!(j["u"].str(), "A");
    assert!(Json::parse("{\"a\":1,}").is_err());
    assert!(Json::parse("[1] x").is_err());
}
