//! What a recipe's `sql` step may run: one query over the recipe's own inputs.
//!
//! Polars' SQL engine also offers table functions (`read_csv('<path or URL>')`, `read_parquet`,
//! `read_json`, `read_ipc`) that read any file the server can see or any URL it can reach. A
//! recipe arrives through the API, so its SQL is parsed here first, with the same parser and
//! options Polars uses, and refused unless it is a single query whose every relation is a plain
//! table name.

use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserOptions};
use std::ops::ControlFlow;

/// Refuses SQL that could reach anything but the tables registered for the step.
pub fn check(query: &str) -> Result<(), String> {
    // Polars' `SQLContext::execute` parses with these options; a different parse could hide a
    // table function from this check.
    let statements = Parser::new(&GenericDialect)
        .with_options(ParserOptions { trailing_commas: true, ..Default::default() })
        .try_with_sql(query)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| format!("sql is not valid: {e}"))?;
    let [statement] = statements.as_slice() else {
        return Err(format!("sql must be exactly one query; found {} statements", statements.len()));
    };
    if !matches!(statement, Statement::Query(_)) {
        return Err("sql must be a query (SELECT or WITH … SELECT); other statements are not allowed".to_string());
    }
    match statement.visit(&mut PlainTablesOnly) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(refusal) => Err(refusal),
    }
}

struct PlainTablesOnly;

impl Visitor for PlainTablesOnly {
    type Break = String;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table { name, args: Some(_), .. } => ControlFlow::Break(format!(
                "sql may not call table function `{name}`: a recipe's SQL reads only the step's inputs (`input` and \
                 the aliases of `inputs`)"
            )),
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(format!(
                "sql may not use `{other}` as a relation: a recipe's SQL reads only the step's inputs"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn plain_queries_over_inputs_pass() {
        for sql in [
            "SELECT * FROM input",
            "SELECT a, count(*) AS n FROM input GROUP BY a",
            "WITH t AS (SELECT * FROM input WHERE x > 1) SELECT * FROM t JOIN other USING (id)",
            "SELECT * FROM (SELECT a FROM input) AS s",
            "SELECT a, b, FROM input",
        ] {
            check(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn file_and_url_readers_are_refused_wherever_they_hide() {
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM READ_PARQUET('s3://bucket/x.parquet')",
            "SELECT * FROM read_json('http://169.254.169.254/latest/meta-data/')",
            "SELECT * FROM read_ipc('/tmp/x.ipc')",
            "SELECT * FROM input JOIN read_csv('/etc/shadow') AS s ON true",
            "SELECT * FROM (SELECT * FROM read_csv('/etc/passwd')) AS t",
            "WITH t AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM t",
            "SELECT * FROM input WHERE a IN (SELECT a FROM read_csv('/etc/passwd'))",
            "SELECT * FROM input UNION ALL SELECT * FROM read_csv('/etc/passwd')",
        ] {
            let refusal = check(sql).expect_err(sql);
            assert!(refusal.contains("table function") || refusal.contains("relation"), "{sql}: {refusal}");
        }
    }

    #[test]
    fn statements_other_than_one_query_are_refused() {
        for sql in [
            "CREATE TABLE t AS SELECT * FROM read_csv('/etc/passwd')",
            "DROP TABLE input",
            "SELECT 1; SELECT 2",
            "",
            "SHOW TABLES",
        ] {
            assert!(check(sql).is_err(), "{sql}");
        }
    }
}
