//! The search SQL both backends run, built once from a parsed [`SearchQuery`].
//!
//! Placeholders are written as `?`; the PostgreSQL backend renumbers them `$1, $2, …`. The
//! SQL is the common subset of SQLite and PostgreSQL, and every value is a bound parameter:
//! nothing from a request is ever spliced into the text. Each clause becomes
//! `r.id IN (SELECT id FROM idx_… WHERE rtype = ? AND param = ? …)`, which an index on
//! `(record_id, rtype, param, value)` serves; ids are unique per type across records.

use hale_core::RecordId;
use hale_fhir::date::DateRange;
use hale_fhir::search::{
    Clause, Include, NumberRange, Prefix, RefMatch, SearchQuery, SortKey, StringMode, Test,
    TokenMatch,
};
use hale_fhir::{Definitions, SearchParamType};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// TEXT
    Text(String),
    /// BIGINT
    Int(i64),
    /// DOUBLE PRECISION / REAL
    Real(f64),
    /// BLOB / BYTEA
    Blob(Vec<u8>),
    /// NULL
    Null,
}

/// SQL text with its parameters, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    /// The statement, with `?` placeholders.
    pub text: String,
    /// The values, in placeholder order.
    pub params: Vec<SqlValue>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn bind(&mut self, v: SqlValue) {
        self.text.push('?');
        self.params.push(v);
    }
    fn text_param(&mut self, s: &str) {
        self.bind(SqlValue::Text(s.to_owned()));
    }
    /// `?, ?, …`, one for each value, bound in order (the inside of an `IN (…)`).
    fn text_params<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text_param(v);
        }
    }
    fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
    }
}

/// The columns every resource query selects, in this order: record id, type, id, version,
/// last updated, method, sealed content (NULL when deleted).
pub const RESOURCE_COLUMNS: &str =
    "r.record_id, r.rtype, r.id, r.version, r.updated_at, v.method, v.content";

/// The index table for a parameter type.
pub fn table_of(kind: SearchParamType) -> &'static str {
    match kind {
        SearchParamType::Token => "idx_token",
        SearchParamType::String => "idx_string",
        SearchParamType::Date => "idx_date",
        SearchParamType::Reference => "idx_ref",
        SearchParamType::Quantity => "idx_quantity",
        SearchParamType::Number => "idx_number",
        SearchParamType::Uri => "idx_uri",
    }
}

fn scope_filter(sql: &mut Sql, alias: &str, scope: Option<&RecordId>) {
    if let Some(record) = scope {
        sql.push(&format!(" AND {alias}.record_id = "));
        sql.text_param(record.as_str());
    }
}

/// Confines index alias `inner` to `scope`, or without one to the record of `outer`, the row
/// it belongs to: what a resource refers to, and what refers to it, is in its own record,
/// and every index leads with the record.
fn same_record(sql: &mut Sql, inner: &str, outer: &str, scope: Option<&RecordId>) {
    match scope {
        Some(_) => scope_filter(sql, inner, scope),
        None => sql.push(&format!(" AND {inner}.record_id = {outer}.record_id")),
    }
}

/// `WHERE` conditions for the matches of `q` (without the `WHERE` keyword).
fn conditions(scope: Option<&RecordId>, q: &SearchQuery) -> Sql {
    let mut sql = Sql::default();
    sql.push("r.rtype = ");
    sql.text_param(&q.resource_type);
    sql.push(" AND r.deleted = 0");
    scope_filter(&mut sql, "r", scope);
    // The most selective clause drives (`r.id IN (…)`, served by a value index); the others
    // are probed row by row (`EXISTS`, served by the row index). Without this, SQLite
    // materialises every clause, including wide date ranges, in full.
    let mut clauses: Vec<&Clause> = q.clauses.iter().collect();
    // Across records, only a clause with a cross-record index may drive.
    clauses.sort_by_key(|c| {
        (
            scope.is_none() && !globally_indexed(&q.resource_type, &c.test),
            selectivity_rank(&c.test, scope),
        )
    });
    for (i, clause) in clauses.iter().enumerate() {
        sql.push(" AND ");
        if i == 0 && matches!(clause.test, Test::Date(_)) {
            sql.append(date_driver(scope, &q.resource_type, clause, &clauses[1..]));
        } else {
            sql.append(clause_sql(scope, &q.resource_type, clause, "r", i > 0));
        }
    }
    sql
}

/// A date clause driving a search, intersected in the index with the other date clauses on
/// the same parameter: `date=ge…&date=lt…` then reads two ranges of one index instead of
/// probing every resource on one side of either bound. The others are still probed after,
/// so a resource with several dates matches exactly as before.
fn date_driver(scope: Option<&RecordId>, rtype: &str, first: &Clause, rest: &[&Clause]) -> Sql {
    let mut sql = Sql::default();
    sql.push("r.id IN (");
    sql.append(value_select(scope, rtype, first));
    for other in rest
        .iter()
        .filter(|c| matches!(c.test, Test::Date(_)) && c.param == first.param)
    {
        sql.push(" INTERSECT ");
        sql.append(value_select(scope, rtype, other));
    }
    sql.push(")");
    sql
}

/// `SELECT x.id FROM idx_… x WHERE …`: the ids whose index values pass a value clause.
fn value_select(scope: Option<&RecordId>, rtype: &str, clause: &Clause) -> Sql {
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT x.id FROM {} x WHERE ",
        value_table(&clause.test)
    ));
    rtype_is(&mut sql, "x", scope, rtype);
    param_is(&mut sql, "x", rtype, &clause.param);
    scope_filter(&mut sql, "x", scope);
    sql.push(" AND (");
    alternatives(&mut sql, &clause.test, Cols { probe: false });
    sql.push(")");
    sql
}

/// The index table a value test reads.
fn value_table(test: &Test) -> &'static str {
    match test {
        Test::Token { .. } => "idx_token",
        Test::String { .. } => "idx_string",
        Test::Date(_) => "idx_date",
        Test::Number(_) => "idx_number",
        Test::Quantity(_) => "idx_quantity",
        Test::Reference(_) => "idx_ref",
        _ => "idx_uri",
    }
}

/// Lower is more selective, as a rule of thumb: ids, then codes, then references, text,
/// numbers, dates, and last the clauses that match by absence. Within a person's record a
/// reference to the person themselves (`patient=`) matches nearly everything, so anything
/// else drives before it.
fn selectivity_rank(test: &Test, scope: Option<&RecordId>) -> u8 {
    match test {
        Test::Id(_) => 0,
        Test::Token { negate: false, .. } | Test::Uri(_) => 1,
        Test::Reference(refs) if scope.is_some_and(|r| refers_only_to(refs, r)) => 7,
        Test::Reference(_) => 2,
        Test::String { mode, .. } if *mode != StringMode::Contains => 3,
        Test::Chain { .. } | Test::Has { .. } => 4,
        Test::Quantity(_) | Test::Number(_) => 5,
        Test::Date(_) | Test::String { .. } => 6,
        Test::LastUpdated(_) => 7,
        Test::Missing(_) | Test::Token { negate: true, .. } => 8,
    }
}

/// Whether every alternative of a reference clause is the record's own Patient.
fn refers_only_to(refs: &[RefMatch], record: &RecordId) -> bool {
    refs.iter().all(|m| {
        matches!(m, RefMatch::Local { target_type, id }
            if id == record.as_str() && target_type.as_deref().is_none_or(|t| t == "Patient"))
    })
}

/// The types searched across every record, with a cross-record index of their tokens: a
/// Patient (finding a person by an identifier such as the NHS number) and a Consent (finding
/// the grants a holder has been given). Everything else is searched one record at a time.
/// The index is partial (`WHERE rtype = 'Patient' OR rtype = 'Consent'`, migration 0009):
/// an index over every record's every code was half of what a bundle import wrote.
pub const SEARCHED_ACROSS_RECORDS: [&str; 2] = ["Patient", "Consent"];

/// Whether a clause can drive a search of `rtype` across every record: an `_id` (ids are
/// unique per type), or a code of a type in [`SEARCHED_ACROSS_RECORDS`]. A search across
/// records without one would scan, so it is refused.
pub fn globally_indexed(rtype: &str, test: &Test) -> bool {
    match test {
        Test::Id(_) => true,
        Test::Token { negate: false, .. } => SEARCHED_ACROSS_RECORDS.contains(&rtype),
        _ => false,
    }
}

/// ` AND {alias}.param = …`: the parameter's own index rows, or for one that is the union of
/// others (`combo-code`), theirs (see [`Definitions::indexed_as`]).
fn param_is(sql: &mut Sql, alias: &str, rtype: &str, param: &str) {
    match Definitions::r4().indexed_as(rtype, param).as_slice() {
        [one] => {
            sql.push(&format!(" AND {alias}.param = "));
            sql.text_param(one);
        }
        several => {
            sql.push(&format!(" AND {alias}.param IN ("));
            sql.text_params(several.iter().copied());
            sql.push(")");
        }
    }
}

/// `{alias}.rtype = …`. Without a record, a type in [`SEARCHED_ACROSS_RECORDS`] is written
/// as a literal (one of those constants, never request text): a planner matches a partial
/// index against a literal, not against a bound parameter.
fn rtype_is(sql: &mut Sql, alias: &str, scope: Option<&RecordId>, rtype: &str) {
    match SEARCHED_ACROSS_RECORDS.iter().find(|t| **t == rtype) {
        Some(constant) if scope.is_none() => {
            sql.push(&format!("{alias}.rtype = '{constant}'"));
        }
        _ => {
            sql.push(&format!("{alias}.rtype = "));
            sql.text_param(rtype);
        }
    }
}

/// How a value column is written: as is where an index should serve it (the driving
/// clause), or wrapped so that no value index is chosen for a row-by-row probe.
#[derive(Clone, Copy)]
struct Cols {
    probe: bool,
}

impl Cols {
    fn text(self, col: &str) -> String {
        if self.probe {
            format!("(x.{col} || '')")
        } else {
            format!("x.{col}")
        }
    }
    fn num(self, col: &str) -> String {
        if self.probe {
            format!("(x.{col} + 0)")
        } else {
            format!("x.{col}")
        }
    }
}

/// One clause as a condition on `alias.id`.
fn clause_sql(
    scope: Option<&RecordId>,
    rtype: &str,
    clause: &Clause,
    alias: &str,
    probe: bool,
) -> Sql {
    let mut sql = Sql::default();
    match &clause.test {
        Test::Id(ids) => {
            sql.push(&format!("{alias}.id IN ("));
            sql.text_params(ids.iter().map(String::as_str));
            sql.push(")");
        }
        Test::LastUpdated(ranges) => {
            sql.push("(");
            for (i, (prefix, range)) in ranges.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                let col = format!("{alias}.updated_at");
                date_condition(&mut sql, &col, &col, *prefix, *range);
            }
            sql.push(")");
        }
        Test::Missing(missing) => {
            let table = clause.kind.map(table_of).unwrap_or("idx_token");
            sql.push(&format!(
                "{alias}.id {}IN (SELECT m.id FROM {table} m WHERE m.rtype = ",
                if *missing { "NOT " } else { "" }
            ));
            sql.text_param(rtype);
            param_is(&mut sql, "m", rtype, &clause.param);
            same_record(&mut sql, "m", alias, scope);
            sql.push(")");
        }
        Test::Chain { target_type, inner } => {
            sql.push(&format!(
                "{alias}.id IN (SELECT f.id FROM idx_ref f WHERE f.rtype = "
            ));
            sql.text_param(rtype);
            param_is(&mut sql, "f", rtype, &clause.param);
            same_record(&mut sql, "f", alias, scope);
            sql.push(" AND f.target_type = ");
            sql.text_param(target_type);
            sql.push(" AND f.target_id IN (SELECT t.id FROM resources t WHERE t.rtype = ");
            sql.text_param(target_type);
            sql.push(" AND t.deleted = 0");
            same_record(&mut sql, "t", "f", scope);
            sql.push(" AND ");
            sql.append(clause_sql(scope, target_type, inner, "t", scope.is_none()));
            sql.push("))");
        }
        Test::Has { source_type, inner } => {
            sql.push(&format!(
                "{alias}.id IN (SELECT f.target_id FROM idx_ref f WHERE f.rtype = "
            ));
            sql.text_param(source_type);
            param_is(&mut sql, "f", source_type, &clause.param);
            same_record(&mut sql, "f", alias, scope);
            sql.push(" AND f.target_type = ");
            sql.text_param(rtype);
            sql.push(" AND f.id IN (SELECT s.id FROM resources s WHERE s.rtype = ");
            sql.text_param(source_type);
            sql.push(" AND s.deleted = 0");
            same_record(&mut sql, "s", "f", scope);
            sql.push(" AND ");
            sql.append(clause_sql(scope, source_type, inner, "s", scope.is_none()));
            sql.push("))");
        }
        test => {
            let not = if matches!(test, Test::Token { negate: true, .. }) {
                "NOT "
            } else {
                ""
            };
            if probe {
                sql.push(&format!(
                    "{not}EXISTS (SELECT 1 FROM {} x WHERE x.record_id = {alias}.record_id AND x.rtype = {alias}.rtype AND x.id = {alias}.id",
                    value_table(test)
                ));
                param_is(&mut sql, "x", rtype, &clause.param);
                sql.push(" AND (");
                alternatives(&mut sql, test, Cols { probe });
                sql.push("))");
            } else {
                sql.push(&format!("{alias}.id {not}IN ("));
                sql.append(value_select(scope, rtype, clause));
                sql.push(")");
            }
        }
    }
    sql
}

/// The OR of a clause's values, on index alias `x`.
fn alternatives(sql: &mut Sql, test: &Test, col: Cols) {
    let mut first = true;
    let mut or = |sql: &mut Sql| {
        if !first {
            sql.push(" OR ");
        }
        first = false;
    };
    match test {
        Test::Token { any, .. } => {
            for m in any {
                or(sql);
                match m {
                    TokenMatch::Code(c) => {
                        sql.push(&format!("{} = ", col.text("code")));
                        sql.text_param(c);
                    }
                    TokenMatch::SystemCode(s, c) => {
                        sql.push(&format!("({} = ", col.text("system")));
                        sql.text_param(s);
                        sql.push(&format!(" AND {} = ", col.text("code")));
                        sql.text_param(c);
                        sql.push(")");
                    }
                    TokenMatch::NoSystem(c) => {
                        sql.push(&format!(
                            "({} = '' AND {} = ",
                            col.text("system"),
                            col.text("code")
                        ));
                        sql.text_param(c);
                        sql.push(")");
                    }
                    TokenMatch::System(s) => {
                        sql.push(&format!("{} = ", col.text("system")));
                        sql.text_param(s);
                    }
                    TokenMatch::Text(t) => {
                        sql.push(&format!("{} LIKE ", col.text("text")));
                        sql.text_param(&format!("{}%", like_escape(t)));
                        sql.push(" ESCAPE '\\'");
                    }
                }
            }
        }
        Test::String { any, mode } => {
            for v in any {
                or(sql);
                match mode {
                    StringMode::Exact => {
                        sql.push(&format!("{} = ", col.text("exact")));
                        sql.text_param(v);
                    }
                    StringMode::StartsWith => {
                        // A range, not LIKE, so both databases use the index.
                        sql.push(&format!("({} >= ", col.text("norm")));
                        sql.text_param(v);
                        sql.push(&format!(" AND {} < ", col.text("norm")));
                        sql.text_param(&format!("{v}\u{10FFFF}"));
                        sql.push(")");
                    }
                    StringMode::Contains => {
                        sql.push(&format!("{} LIKE ", col.text("norm")));
                        sql.text_param(&format!("%{}%", like_escape(v)));
                        sql.push(" ESCAPE '\\'");
                    }
                }
            }
        }
        Test::Date(ranges) => {
            for (prefix, range) in ranges {
                or(sql);
                date_condition(sql, &col.num("lo"), &col.num("hi"), *prefix, *range);
            }
        }
        Test::Number(values) => {
            for (prefix, n) in values {
                or(sql);
                number_condition(sql, &col.num("value"), *prefix, *n);
            }
        }
        Test::Quantity(values) => {
            for (prefix, n, system, code) in values {
                or(sql);
                sql.push("(");
                number_condition(sql, &col.num("value"), *prefix, *n);
                if let Some(s) = system {
                    sql.push(&format!(" AND {} = ", col.text("system")));
                    sql.text_param(s);
                }
                if let Some(c) = code {
                    sql.push(&format!(" AND {} = ", col.text("code")));
                    sql.text_param(c);
                }
                sql.push(")");
            }
        }
        Test::Reference(refs) => {
            for m in refs {
                or(sql);
                match m {
                    RefMatch::Local {
                        target_type: Some(t),
                        id,
                    } => {
                        sql.push(&format!("({} = ", col.text("target_type")));
                        sql.text_param(t);
                        sql.push(&format!(" AND {} = ", col.text("target_id")));
                        sql.text_param(id);
                        sql.push(")");
                    }
                    RefMatch::Local {
                        target_type: None,
                        id,
                    } => {
                        sql.push(&format!("{} = ", col.text("target_id")));
                        sql.text_param(id);
                    }
                    RefMatch::Url(u) => {
                        sql.push(&format!("{} = ", col.text("url")));
                        sql.text_param(u);
                    }
                }
            }
        }
        Test::Uri(values) => {
            for v in values {
                or(sql);
                sql.push(&format!("{} = ", col.text("value")));
                sql.text_param(v);
            }
        }
        Test::Id(_)
        | Test::LastUpdated(_)
        | Test::Missing(_)
        | Test::Chain { .. }
        | Test::Has { .. } => {
            sql.push("1 = 0");
        }
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A stored range [lo, hi] against a search range, per FHIR R4 §3.1.1.4.6.
fn date_condition(sql: &mut Sql, lo: &str, hi: &str, prefix: Prefix, r: DateRange) {
    let int = |sql: &mut Sql, v: i64| sql.bind(SqlValue::Int(v));
    match prefix {
        Prefix::Eq | Prefix::Ne => {
            if prefix == Prefix::Ne {
                sql.push("NOT ");
            }
            sql.push(&format!("({lo} >= "));
            int(sql, r.lo);
            sql.push(&format!(" AND {hi} <= "));
            int(sql, r.hi);
            sql.push(")");
        }
        Prefix::Gt => {
            sql.push(&format!("{hi} > "));
            int(sql, r.hi);
        }
        Prefix::Lt => {
            sql.push(&format!("{lo} < "));
            int(sql, r.lo);
        }
        Prefix::Ge => {
            sql.push(&format!("{hi} >= "));
            int(sql, r.lo);
        }
        Prefix::Le => {
            sql.push(&format!("{lo} <= "));
            int(sql, r.hi);
        }
        Prefix::Sa => {
            sql.push(&format!("{lo} > "));
            int(sql, r.hi);
        }
        Prefix::Eb => {
            sql.push(&format!("{hi} < "));
            int(sql, r.lo);
        }
        Prefix::Ap => {
            // Approximately: within 10 % of the gap to now, and at least a day (§3.1.1.4.1).
            let now = hale_fhir::date::now_millis();
            let slack = ((now - r.lo).abs() / 10).max(86_400_000);
            sql.push(&format!("({hi} >= "));
            int(sql, r.lo - slack);
            sql.push(&format!(" AND {lo} <= "));
            int(sql, r.hi + slack);
            sql.push(")");
        }
    }
}

fn number_condition(sql: &mut Sql, col: &str, prefix: Prefix, n: NumberRange) {
    let real = |sql: &mut Sql, v: f64| sql.bind(SqlValue::Real(v));
    match prefix {
        Prefix::Eq | Prefix::Ne => {
            if prefix == Prefix::Ne {
                sql.push("NOT ");
            }
            sql.push(&format!("({col} >= "));
            real(sql, n.lo);
            sql.push(&format!(" AND {col} < "));
            real(sql, n.hi);
            sql.push(")");
        }
        Prefix::Gt | Prefix::Sa => {
            sql.push(&format!("{col} > "));
            real(sql, n.value);
        }
        Prefix::Lt | Prefix::Eb => {
            sql.push(&format!("{col} < "));
            real(sql, n.value);
        }
        Prefix::Ge => {
            sql.push(&format!("{col} >= "));
            real(sql, n.value);
        }
        Prefix::Le => {
            sql.push(&format!("{col} <= "));
            real(sql, n.value);
        }
        Prefix::Ap => {
            let slack = (n.value * 0.1).abs();
            sql.push(&format!("({col} >= "));
            real(sql, n.value - slack);
            sql.push(&format!(" AND {col} <= "));
            real(sql, n.value + slack);
            sql.push(")");
        }
    }
}

/// How a sort key reads its value: a column of `r`, or an aggregate over an index table.
enum SortSource {
    Column(&'static str),
    Index {
        table: &'static str,
        col: &'static str,
        agg: &'static str,
    },
}

fn sort_source(key: &SortKey) -> Option<SortSource> {
    Some(match (key.param.as_str(), key.kind) {
        ("_id", _) => SortSource::Column("r.id"),
        ("_lastUpdated", _) => SortSource::Column("r.updated_at"),
        (_, Some(kind)) => {
            let (col, agg) = match (kind, key.descending) {
                (SearchParamType::Date, false) => ("lo", "MIN"),
                (SearchParamType::Date, true) => ("hi", "MAX"),
                (SearchParamType::String, d) => ("norm", if d { "MAX" } else { "MIN" }),
                (SearchParamType::Token, d) => ("code", if d { "MAX" } else { "MIN" }),
                (_, d) => ("value", if d { "MAX" } else { "MIN" }),
            };
            SortSource::Index {
                table: table_of(kind),
                col,
                agg,
            }
        }
        (_, None) => return None,
    })
}

/// The page of matches of `q`, as [`RESOURCE_COLUMNS`]. The matches are sorted and cut to
/// the page on narrow rows first; only the page's rows then fetch their content, so a sort
/// over thousands of matches never carries their content through the sorter.
pub fn search_page(scope: Option<&RecordId>, q: &SearchQuery) -> Sql {
    let mut keys = Vec::new();
    let mut inner = Sql::default();
    let mut joins = Sql::default();
    inner.push("SELECT r.record_id, r.rtype, r.id, r.version, r.updated_at");
    for key in &q.sort {
        let Some(source) = sort_source(key) else {
            continue;
        };
        let k = keys.len();
        inner.push(", ");
        match (source, scope) {
            (SortSource::Column(col), _) => inner.push(col),
            // Within a record, each resource's value is aggregated once, in one pass over
            // the index, and joined: a lookup per resource into the database's pages costs
            // far more when thousands match (`patient=…&_sort=-date`).
            (SortSource::Index { table, col, agg }, Some(record)) => {
                inner.push(&format!("j{k}.v"));
                joins.push(&format!(
                    " LEFT JOIN (SELECT s.id AS sid, {agg}(s.{col}) AS v FROM {table} s WHERE s.record_id = "
                ));
                joins.text_param(record.as_str());
                joins.push(" AND s.rtype = ");
                joins.text_param(&q.resource_type);
                param_is(&mut joins, "s", &q.resource_type, &key.param);
                joins.push(&format!(" GROUP BY s.id) j{k} ON j{k}.sid = r.id"));
            }
            (SortSource::Index { table, col, agg }, None) => {
                inner.push(&format!(
                    "(SELECT {agg}(s.{col}) FROM {table} s WHERE s.record_id = r.record_id AND s.rtype = r.rtype AND s.id = r.id"
                ));
                param_is(&mut inner, "s", &q.resource_type, &key.param);
                inner.push(")");
            }
        }
        inner.push(&format!(" AS k{k}"));
        keys.push(if key.descending { "DESC" } else { "ASC" });
    }
    inner.push(" FROM resources r");
    inner.append(joins);
    inner.push(" WHERE ");
    inner.append(conditions(scope, q));
    // Resources without a value sort last in both directions (NULLS LAST: SQLite 3.30+ and
    // PostgreSQL); the id is a stable tiebreak, so pages never overlap or skip.
    let order = |alias: &str| -> String {
        keys.iter()
            .enumerate()
            .map(|(i, dir)| format!("{alias}k{i} {dir} NULLS LAST, "))
            .collect()
    };
    inner.push(&format!(" ORDER BY {}r.id ASC LIMIT ", order("")));
    inner.bind(SqlValue::Int(i64::try_from(q.count).unwrap_or(i64::MAX)));
    inner.push(" OFFSET ");
    inner.bind(SqlValue::Int(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {RESOURCE_COLUMNS} FROM ("));
    sql.append(inner);
    sql.push(
        ") r JOIN resource_versions v ON v.record_id = r.record_id AND v.rtype = r.rtype \
         AND v.id = r.id AND v.version = r.version",
    );
    sql.push(&format!(" ORDER BY {}r.id ASC", order("r.")));
    sql
}

/// The number of matches of `q`.
pub fn search_count(scope: Option<&RecordId>, q: &SearchQuery) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT COUNT(*) FROM resources r WHERE ");
    sql.append(conditions(scope, q));
    sql
}

/// Resources that `_include` (`reverse = false`) or `_revinclude` (`reverse = true`) brings
/// in for the page's ids (all of type `searched_type`), as [`RESOURCE_COLUMNS`].
///
/// Without a record scope, the page's records stand in for it (`page_records`): what a match
/// refers to, and what refers to it, is always in the match's own record, and the reference
/// indexes all lead with the record.
pub fn include(
    scope: Option<&RecordId>,
    inc: &Include,
    searched_type: &str,
    page_ids: &[String],
    page_records: &[&RecordId],
    reverse: bool,
) -> Sql {
    let mut sql = Sql::default();
    let join = if reverse {
        "r.rtype = f.rtype AND r.id = f.id"
    } else {
        "r.rtype = f.target_type AND r.id = f.target_id"
    };
    // CROSS JOIN fixes the order on SQLite: from the page's references to what they name.
    // Left to itself the planner chose to read every resource of the record and probe the
    // references for each (a join order PostgreSQL is free to change).
    sql.push(&format!(
        "SELECT DISTINCT {RESOURCE_COLUMNS} FROM idx_ref f CROSS JOIN resources r \
         CROSS JOIN resource_versions v WHERE {join} AND v.record_id = r.record_id \
         AND v.rtype = r.rtype AND v.id = r.id AND v.version = r.version AND r.deleted = 0 \
         AND f.rtype = "
    ));
    sql.text_param(&inc.source_type);
    param_is(&mut sql, "f", &inc.source_type, &inc.param);
    scope_filter(&mut sql, "f", scope);
    scope_filter(&mut sql, "r", scope);
    if scope.is_none() {
        sql.push(" AND f.record_id IN (");
        sql.text_params(page_records.iter().map(|r| r.as_str()));
        sql.push(") AND r.record_id = f.record_id");
    }
    if let Some(t) = &inc.target_type {
        sql.push(" AND f.target_type = ");
        sql.text_param(t);
    }
    if reverse {
        sql.push(" AND f.target_type = ");
        sql.text_param(searched_type);
        sql.push(" AND f.target_id IN (");
    } else {
        sql.push(" AND f.id IN (");
    }
    sql.text_params(page_ids.iter().map(String::as_str));
    sql.push(") ORDER BY r.rtype, r.id");
    sql
}

/// Rewrites `?` placeholders as `$1, $2, …` (PostgreSQL). The builder never emits `?`
/// anywhere but as a placeholder.
pub fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hale_fhir::Definitions;

    fn query(rt: &str, pairs: &[(&str, &str)]) -> SearchQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        hale_fhir::search::parse(Definitions::r4(), rt, &pairs, false).unwrap()
    }

    #[test]
    fn request_values_are_bound_never_spliced() {
        let evil = "x'); DROP TABLE resources; --";
        let q = query("Patient", &[("name", evil), ("identifier", evil)]);
        let record = RecordId::parse("r1").unwrap();
        let sql = search_page(Some(&record), &q);
        assert!(!sql.text.contains("DROP"));
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
        assert!(sql.params.contains(&SqlValue::Text("r1".into())));
    }

    #[test]
    fn placeholders_are_renumbered_for_postgres() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
