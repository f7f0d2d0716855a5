//! A FHIR search request parsed into a typed query (FHIR R4 §3.1.1).
//!
//! Parsing is where every value is checked: a store only ever sees well-formed clauses.
//! What Hale cannot answer from an index is refused here, never scanned for.

use crate::date::{DateRange, parse_range};
use crate::{Definitions, Issue, IssueCode, SearchParamType};

/// The comparison prefix of an ordered value (§3.1.1.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// equal (the range of the value contains, or is contained by, the search range)
    Eq,
    /// not equal
    Ne,
    /// greater than
    Gt,
    /// less than
    Lt,
    /// greater or equal
    Ge,
    /// less or equal
    Le,
    /// starts after
    Sa,
    /// ends before
    Eb,
    /// approximately (within 10 %)
    Ap,
}

impl Prefix {
    /// Whether a stored date range `[lo, hi]` matches `prefix r` (FHIR R4 §3.1.1.4.6), for
    /// values Hale computes rather than stores (the store's SQL applies the same rules).
    pub fn admits_range(self, lo: i64, hi: i64, r: crate::date::DateRange) -> bool {
        match self {
            Prefix::Eq => lo >= r.lo && hi <= r.hi,
            Prefix::Ne => !(lo >= r.lo && hi <= r.hi),
            Prefix::Gt => hi > r.hi,
            Prefix::Lt => lo < r.lo,
            Prefix::Ge => hi >= r.lo,
            Prefix::Le => lo <= r.hi,
            Prefix::Sa => lo > r.hi,
            Prefix::Eb => hi < r.lo,
            Prefix::Ap => {
                let slack = ((crate::date::now_millis() - r.lo).abs() / 10).max(86_400_000);
                hi >= r.lo - slack && lo <= r.hi + slack
            }
        }
    }
}

fn split_prefix(s: &str) -> (Prefix, &str) {
    let p = match s.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, s),
    };
    (p, &s[2..])
}

/// A number with the range its written precision implies (`100` is [99.5, 100.5)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberRange {
    /// The value.
    pub value: f64,
    /// Lower bound of the implied range.
    pub lo: f64,
    /// Upper bound (exclusive) of the implied range.
    pub hi: f64,
}

fn parse_number(s: &str) -> Option<NumberRange> {
    let value: f64 = s.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let mantissa = s.split(['e', 'E']).next().unwrap_or(s);
    let exponent: i32 = s
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some(NumberRange {
        value,
        lo: value - half,
        hi: value + half,
    })
}

/// How a string parameter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    /// Case-insensitive, from the start (the default).
    StartsWith,
    /// Case-sensitive, whole value.
    Exact,
    /// Case-insensitive, anywhere.
    Contains,
}

/// One alternative of a token parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenMatch {
    /// `code`: any system.
    Code(String),
    /// `system|code`.
    SystemCode(String, String),
    /// `|code`: no system.
    NoSystem(String),
    /// `system|`: any code in the system.
    System(String),
    /// `:text`: text starts with (case-insensitive).
    Text(String),
}

/// One alternative of a reference parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefMatch {
    /// A local target, by type (if known) and id.
    Local {
        /// The target type, if the value or a `:Type` modifier gave it.
        target_type: Option<String>,
        /// The target id.
        id: String,
    },
    /// An absolute or canonical URL.
    Url(String),
}

/// What one clause tests; its values are alternatives (OR).
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated`.
    LastUpdated(Vec<(Prefix, DateRange)>),
    /// `:missing=true|false`.
    Missing(bool),
    /// Token alternatives; `negate` for `:not`.
    Token {
        /// Alternatives.
        any: Vec<TokenMatch>,
        /// `:not`: resources with no matching value.
        negate: bool,
    },
    /// String alternatives.
    String {
        /// Alternatives (already lower-cased unless exact).
        any: Vec<String>,
        /// How to match.
        mode: StringMode,
    },
    /// Date alternatives.
    Date(Vec<(Prefix, DateRange)>),
    /// Number alternatives.
    Number(Vec<(Prefix, NumberRange)>),
    /// Quantity alternatives: (prefix, number, system, code).
    Quantity(Vec<(Prefix, NumberRange, Option<String>, Option<String>)>),
    /// Reference alternatives.
    Reference(Vec<RefMatch>),
    /// URI alternatives (exact).
    Uri(Vec<String>),
    /// One level of chaining: the reference `param` points at a `target_type` resource that
    /// matches `inner`.
    Chain {
        /// The target type.
        target_type: String,
        /// The clause on the target.
        inner: Box<Clause>,
    },
    /// Reverse chaining (`_has:Observation:patient:code=x`): a `source_type` resource whose
    /// reference parameter (the clause's `param`) points at this one matches `inner`.
    Has {
        /// The type that refers to the searched one.
        source_type: String,
        /// The clause on the referring resource.
        inner: Box<Clause>,
    },
}

/// One search clause; clauses are combined with AND.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The parameter's code (as indexed, e.g. `subject:identifier`).
    pub param: String,
    /// The parameter's type (for `:missing` and sorting).
    pub kind: Option<SearchParamType>,
    /// What to test.
    pub test: Test,
}

/// A `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The parameter (`_id`, `_lastUpdated` or a search parameter).
    pub param: String,
    /// Its type, for search parameters.
    pub kind: Option<SearchParamType>,
    /// Descending (`-date`).
    pub descending: bool,
}

/// An `_include` or `_revinclude`: `SourceType:param[:TargetType]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The resource type holding the reference.
    pub source_type: String,
    /// The reference parameter.
    pub param: String,
    /// Only targets of this type.
    pub target_type: Option<String>,
}

/// How the total is reported (`_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Not reported.
    None,
    /// Counted exactly (the default: Hale's counts are index-served).
    Accurate,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The type searched.
    pub resource_type: String,
    /// AND of clauses.
    pub clauses: Vec<Clause>,
    /// Page size.
    pub count: usize,
    /// Offset of the page.
    pub offset: usize,
    /// Sort keys, most significant first.
    pub sort: Vec<SortKey>,
    /// `_include`s.
    pub include: Vec<Include>,
    /// `_revinclude`s.
    pub revinclude: Vec<Include>,
    /// `_summary=count`: the total only.
    pub summary_count: bool,
    /// `_total`.
    pub total: Total,
    /// `_elements`: the top-level elements to return.
    pub elements: Option<Vec<String>>,
    /// The parameters actually used, for the Bundle's self link.
    pub used: Vec<(String, String)>,
}

/// The page size when `_count` is absent, and the most a page may hold.
pub const DEFAULT_COUNT: usize = 50;
/// The largest `_count` Hale serves.
pub const MAX_COUNT: usize = 1000;

fn bad(param: &str, message: impl Into<String>) -> Issue {
    Issue::error(IssueCode::Invalid, param, message)
}

/// Parses `pairs` (already percent-decoded) as a search of `resource_type`. Unknown
/// parameters are ignored unless `strict` (`Prefer: handling=strict`); known parameters
/// that no index serves are always refused.
pub fn parse(
    defs: &Definitions,
    resource_type: &str,
    pairs: &[(String, String)],
    strict: bool,
) -> Result<SearchQuery, Issue> {
    let mut q = SearchQuery {
        resource_type: resource_type.to_owned(),
        clauses: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        summary_count: false,
        total: Total::Accurate,
        elements: None,
        used: Vec::new(),
    };
    for (key, value) in pairs {
        let mut used = true;
        match key.as_str() {
            "_count" => {
                q.count = value
                    .parse::<usize>()
                    .map_err(|_| bad("_count", "_count must be a whole number"))?
                    .min(MAX_COUNT)
            }
            "_offset" => {
                q.offset = value
                    .parse()
                    .map_err(|_| bad("_offset", "_offset must be a whole number"))?
            }
            "_sort" => {
                for k in value.split(',').filter(|k| !k.is_empty()) {
                    let (descending, name) = match k.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, k),
                    };
                    let kind = match name {
                        "_id" | "_lastUpdated" => None,
                        n => Some(
                            defs.search_param(resource_type, n)
                                .ok_or_else(|| bad("_sort", format!("cannot sort by '{n}'")))?
                                .kind,
                        ),
                    };
                    if matches!(kind, Some(SearchParamType::Reference)) {
                        return Err(bad("_sort", format!("cannot sort by reference '{name}'")));
                    }
                    q.sort.push(SortKey {
                        param: name.to_owned(),
                        kind,
                        descending,
                    });
                }
            }
            "_include" | "_revinclude" => {
                let inc = parse_include(defs, value)?;
                if key == "_include" {
                    if inc.source_type != resource_type {
                        return Err(bad(
                            "_include",
                            "_include must start with the searched type",
                        ));
                    }
                    q.include.push(inc);
                } else {
                    q.revinclude.push(inc);
                }
            }
            "_summary" => match value.as_str() {
                "count" => q.summary_count = true,
                "false" => {}
                _ if strict => return Err(bad("_summary", "only _summary=count is supported")),
                _ => used = false,
            },
            "_total" => match value.as_str() {
                "none" => q.total = Total::None,
                "accurate" | "estimate" => q.total = Total::Accurate,
                _ => return Err(bad("_total", "_total must be none, estimate or accurate")),
            },
            "_elements" => {
                q.elements = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "_format" | "_pretty" => used = false,
            _ => match parse_clause(defs, resource_type, key, value)? {
                Some(clause) => q.clauses.push(clause),
                None if strict => {
                    return Err(Issue::error(
                        IssueCode::NotSupported,
                        key.as_str(),
                        format!("unknown search parameter '{key}' for {resource_type}"),
                    ));
                }
                None => used = false,
            },
        }
        if used {
            q.used.push((key.clone(), value.clone()));
        }
    }
    Ok(q)
}

fn parse_include(defs: &Definitions, value: &str) -> Result<Include, Issue> {
    let mut parts = value.split(':');
    let source_type = parts.next().unwrap_or_default().to_owned();
    let param = parts.next().unwrap_or_default().to_owned();
    let target_type = parts.next().map(str::to_owned);
    let def = defs
        .search_param(&source_type, &param)
        .filter(|p| p.kind == SearchParamType::Reference)
        .ok_or_else(|| {
            bad(
                "_include",
                "expected SourceType:referenceParameter[:TargetType]",
            )
        })?;
    if let Some(t) = &target_type
        && !def.targets.contains(t)
    {
        return Err(bad("_include", format!("'{param}' cannot point to '{t}'")));
    }
    Ok(Include {
        source_type,
        param,
        target_type,
    })
}

/// `_has:Source:reference:parameter[:modifier]` (one level): `rest` is what follows `_has:`.
fn parse_has(
    defs: &Definitions,
    resource_type: &str,
    key: &str,
    rest: &str,
    value: &str,
) -> Result<Clause, Issue> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source_type), Some(param), Some(inner_key)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(key, "expected _has:Type:reference:parameter"));
    };
    if !defs.is_resource_type(source_type) {
        return Err(bad(key, format!("'{source_type}' is not a resource type")));
    }
    let def = defs
        .search_param(source_type, param)
        .filter(|d| d.kind == SearchParamType::Reference)
        .ok_or_else(|| {
            bad(
                key,
                format!("'{param}' is not a reference of {source_type}"),
            )
        })?;
    if !def.targets.iter().any(|t| t == resource_type) {
        return Err(bad(
            key,
            format!("{source_type}.{param} cannot point to {resource_type}"),
        ));
    }
    if inner_key.starts_with("_has") || inner_key.contains('.') {
        return Err(bad(
            key,
            "only one level of _has, without chaining, is supported",
        ));
    }
    let inner = parse_clause(defs, source_type, inner_key, value)?.ok_or_else(|| {
        Issue::error(
            IssueCode::NotSupported,
            key,
            format!("unknown search parameter '{inner_key}' for {source_type}"),
        )
    })?;
    Ok(Clause {
        param: param.to_owned(),
        kind: Some(SearchParamType::Reference),
        test: Test::Has {
            source_type: source_type.to_owned(),
            inner: Box::new(inner),
        },
    })
}

/// One `name[:modifier]=value` pair as a clause, or `None` if the parameter is unknown.
fn parse_clause(
    defs: &Definitions,
    resource_type: &str,
    key: &str,
    value: &str,
) -> Result<Option<Clause>, Issue> {
    if let Some(rest) = key.strip_prefix("_has:") {
        return parse_has(defs, resource_type, key, rest, value).map(Some);
    }
    // Chaining: `subject:Patient.name=x` or `subject.name=x` (one level).
    if let Some((head, tail)) = key.split_once('.') {
        let (param, type_modifier) = match head.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (head, None),
        };
        let Some(def) = defs.search_param(resource_type, param) else {
            return Ok(None);
        };
        if def.kind != SearchParamType::Reference {
            return Err(bad(
                key,
                format!("'{param}' is not a reference and cannot be chained"),
            ));
        }
        // `where(resolve() is Patient)` narrows the targets beyond the declared list.
        let narrowed: Vec<String> = match def
            .paths
            .iter()
            .map(|p| p.ref_type.clone())
            .collect::<Option<Vec<_>>>()
        {
            Some(mut types) => {
                types.dedup();
                types
            }
            None => def.targets.clone(),
        };
        let target_type = match (type_modifier, narrowed.as_slice()) {
            (Some(t), targets) if targets.iter().any(|x| x == t) => t.to_owned(),
            (Some(t), _) => return Err(bad(key, format!("'{param}' cannot point to '{t}'"))),
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(bad(
                    key,
                    format!(
                        "'{param}' can point to several types: name one, as {param}:Type.{tail}"
                    ),
                ));
            }
        };
        if tail.contains('.') {
            return Err(bad(key, "only one level of chaining is supported"));
        }
        let inner = parse_clause(defs, &target_type, tail, value)?.ok_or_else(|| {
            Issue::error(
                IssueCode::NotSupported,
                key,
                format!("unknown search parameter '{tail}' for {target_type}"),
            )
        })?;
        return Ok(Some(Clause {
            param: param.to_owned(),
            kind: Some(SearchParamType::Reference),
            test: Test::Chain {
                target_type,
                inner: Box::new(inner),
            },
        }));
    }
    let (name, modifier) = match key.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (key, None),
    };
    let values: Vec<&str> = split_unescaped(value);
    if values.iter().any(|v| v.is_empty()) {
        return Err(bad(key, "a search value must not be empty"));
    }
    match name {
        "_id" => {
            return Ok(Some(Clause {
                param: "_id".into(),
                kind: None,
                test: Test::Id(values.iter().map(|v| (*v).to_owned()).collect()),
            }));
        }
        "_lastUpdated" => {
            return Ok(Some(Clause {
                param: "_lastUpdated".into(),
                kind: None,
                test: Test::LastUpdated(parse_dates(key, &values)?),
            }));
        }
        _ => {}
    }
    let Some(def) = defs.search_param(resource_type, name) else {
        if defs.is_unsupported_param(resource_type, name)
            || name == "_text"
            || name == "_content"
            || name == "_has"
            || name.starts_with("_has:")
            || name == "_list"
            || name == "_query"
        {
            return Err(Issue::error(
                IssueCode::NotSupported,
                key,
                format!("search by '{name}' is not supported: no index serves it"),
            ));
        }
        return Ok(None);
    };
    let kind = def.kind;
    let clause = |param: &str, test| Clause {
        param: param.to_owned(),
        kind: Some(kind),
        test,
    };
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(bad(key, ":missing must be true or false")),
        };
        return Ok(Some(clause(name, Test::Missing(missing))));
    }
    let unsupported_modifier = || {
        Issue::error(
            IssueCode::NotSupported,
            key,
            format!(
                "modifier ':{}' is not supported on a {kind:?} parameter",
                modifier.unwrap_or_default()
            ),
        )
    };
    let test = match kind {
        SearchParamType::Token => {
            let (text, negate) = match modifier {
                None => (false, false),
                Some("text") => (true, false),
                Some("not") => (false, true),
                Some(_) => return Err(unsupported_modifier()),
            };
            let any = values
                .iter()
                .map(|v| {
                    if text {
                        return TokenMatch::Text(v.to_lowercase());
                    }
                    match v.split_once('|') {
                        None => TokenMatch::Code((*v).to_owned()),
                        Some(("", code)) => TokenMatch::NoSystem(code.to_owned()),
                        Some((system, "")) => TokenMatch::System(system.to_owned()),
                        Some((system, code)) => {
                            TokenMatch::SystemCode(system.to_owned(), code.to_owned())
                        }
                    }
                })
                .collect();
            Test::Token { any, negate }
        }
        SearchParamType::String => {
            let mode = match modifier {
                None => StringMode::StartsWith,
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                Some(_) => return Err(unsupported_modifier()),
            };
            let any = values
                .iter()
                .map(|v| {
                    if mode == StringMode::Exact {
                        (*v).to_owned()
                    } else {
                        v.to_lowercase()
                    }
                })
                .collect();
            Test::String { any, mode }
        }
        SearchParamType::Date => {
            if modifier.is_some() {
                return Err(unsupported_modifier());
            }
            Test::Date(parse_dates(key, &values)?)
        }
        SearchParamType::Number => {
            if modifier.is_some() {
                return Err(unsupported_modifier());
            }
            let mut any = Vec::new();
            for v in &values {
                let (p, rest) = split_prefix(v);
                any.push((
                    p,
                    parse_number(rest).ok_or_else(|| bad(key, "expected a number"))?,
                ));
            }
            Test::Number(any)
        }
        SearchParamType::Quantity => {
            if modifier.is_some() {
                return Err(unsupported_modifier());
            }
            let mut any = Vec::new();
            for v in &values {
                let (p, rest) = split_prefix(v);
                let mut parts = rest.splitn(3, '|');
                let number = parts
                    .next()
                    .and_then(parse_number)
                    .ok_or_else(|| bad(key, "expected number|system|code"))?;
                let system = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
                let code = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
                any.push((p, number, system, code));
            }
            Test::Quantity(any)
        }
        SearchParamType::Reference => {
            if modifier == Some("identifier") {
                let any = values
                    .iter()
                    .map(|v| match v.split_once('|') {
                        None => TokenMatch::Code((*v).to_owned()),
                        Some(("", c)) => TokenMatch::NoSystem(c.to_owned()),
                        Some((s, "")) => TokenMatch::System(s.to_owned()),
                        Some((s, c)) => TokenMatch::SystemCode(s.to_owned(), c.to_owned()),
                    })
                    .collect();
                return Ok(Some(Clause {
                    param: format!("{name}:identifier"),
                    kind: Some(SearchParamType::Token),
                    test: Test::Token { any, negate: false },
                }));
            }
            let type_modifier = match modifier {
                None => None,
                Some(t) if def.targets.iter().any(|x| x == t) => Some(t.to_owned()),
                Some(_) => return Err(unsupported_modifier()),
            };
            let any = values
                .iter()
                .map(|v| {
                    if v.contains("://") || v.starts_with("urn:") {
                        return RefMatch::Url((*v).to_owned());
                    }
                    match v.split_once('/') {
                        Some((t, id)) => RefMatch::Local {
                            target_type: Some(t.to_owned()),
                            id: id.to_owned(),
                        },
                        None => RefMatch::Local {
                            target_type: type_modifier.clone(),
                            id: (*v).to_owned(),
                        },
                    }
                })
                .collect();
            Test::Reference(any)
        }
        SearchParamType::Uri => {
            if modifier.is_some() {
                return Err(unsupported_modifier());
            }
            Test::Uri(values.iter().map(|v| (*v).to_owned()).collect())
        }
    };
    Ok(Some(clause(name, test)))
}

fn parse_dates(key: &str, values: &[&str]) -> Result<Vec<(Prefix, DateRange)>, Issue> {
    values
        .iter()
        .map(|v| {
            let (p, rest) = split_prefix(v);
            parse_range(rest)
                .map(|r| (p, r))
                .ok_or_else(|| bad(key, "expected a FHIR date, e.g. 2024-03-01 or ge2024-03"))
        })
        .collect()
}

/// Splits on commas not escaped with a backslash (§3.1.1.5.7 escaping).
fn split_unescaped(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b',' && (i == 0 || bytes[i - 1] != b'\\') {
            out.push(&value[start..i]);
            start = i + 1;
        }
    }
    out.push(&value[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(rt: &str, pairs: &[(&str, &str)]) -> Result<SearchQuery, Issue> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        parse(Definitions::r4(), rt, &pairs, false)
    }

    #[test]
    fn token_values_keep_system_and_code_apart() {
        let s = q("Observation", &[("code", "http://loinc.org|8867-4,|x,y")]).unwrap();
        assert_eq!(
            s.clauses[0].test,
            Test::Token {
                negate: false,
                any: vec![
                    TokenMatch::SystemCode("http://loinc.org".into(), "8867-4".into()),
                    TokenMatch::NoSystem("x".into()),
                    TokenMatch::Code("y".into())
                ]
            }
        );
    }

    #[test]
    fn prefixes_and_precision_shape_number_ranges() {
        let s = q(
            "Observation",
            &[("value-quantity", "gt5.40|http://unitsofmeasure.org|mmol/L")],
        )
        .unwrap();
        let Test::Quantity(v) = &s.clauses[0].test else {
            panic!()
        };
        assert_eq!(v[0].0, Prefix::Gt);
        assert!((v[0].1.lo - 5.395).abs() < 1e-9 && (v[0].1.hi - 5.405).abs() < 1e-9);
        assert_eq!(v[0].3.as_deref(), Some("mmol/L"));
    }

    #[test]
    fn chains_need_an_unambiguous_target() {
        assert!(q("Observation", &[("subject.name", "x")]).is_err());
        let s = q("Observation", &[("subject:Patient.name", "x")]).unwrap();
        assert!(
            matches!(&s.clauses[0].test, Test::Chain { target_type, .. } if target_type == "Patient")
        );
        let s = q("Observation", &[("patient.name", "x")]).unwrap();
        assert_eq!(s.clauses.len(), 1);
    }

    #[test]
    fn reverse_chains_name_a_referring_type_and_one_of_its_references() {
        let s = q("Patient", &[("_has:Observation:patient:code", "1234-5")]).unwrap();
        assert!(matches!(&s.clauses[0].test,
            Test::Has { source_type, inner } if source_type == "Observation" && inner.param == "code"));
        assert_eq!(s.clauses[0].param, "patient");
        assert!(q("Patient", &[("_has:Nonsense:patient:code", "x")]).is_err());
        assert!(q("Patient", &[("_has:Observation:code:code", "x")]).is_err());
        assert!(q("Practitioner", &[("_has:Observation:patient:code", "x")]).is_err());
        assert!(q("Patient", &[("_has:Observation:patient", "x")]).is_err());
        assert!(
            q(
                "Patient",
                &[(
                    "_has:Observation:patient:_has:Observation:patient:code",
                    "x"
                )]
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_parameters_are_ignored_unless_strict() {
        let s = q("Observation", &[("colour", "red")]).unwrap();
        assert!(s.clauses.is_empty() && s.used.is_empty());
        let pairs = vec![("colour".to_string(), "red".to_string())];
        assert!(parse(Definitions::r4(), "Observation", &pairs, true).is_err());
    }

    #[test]
    fn parameters_no_index_serves_are_refused() {
        let err = q("Observation", &[("code-value-quantity", "x$1")]).unwrap_err();
        assert_eq!(err.code, IssueCode::NotSupported);
        assert!(q("Observation", &[("_text", "x")]).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_parameter_named() {
        let err = q("Observation", &[("date", "yesterday")]).unwrap_err();
        assert_eq!(err.path, "date");
        assert!(q("Observation", &[("_count", "-1")]).is_err());
        assert!(q("Patient", &[("name:fuzzy", "x")]).is_err());
    }
}
