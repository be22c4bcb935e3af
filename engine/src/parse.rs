//! The front parser: splits a script into statements ([`split`], on [`tokens`]), numbers and
//! binds parameters ([`params`]), limits statement size ([`limits`]), and recognises the Hive-flavoured
//! statements Cuve handles itself (databases, DDL, partitions, SHOW, DESCRIBE, Hive INSERT).
//! Everything else is parsed by DataFusion's parser and handed to its planner as a syntax
//! tree; statements Cuve builds for the planner are trees too ([`compose`]).
//!
//! Grammar is driven by hand on top of sqlparser's Hive dialect primitives (identifiers,
//! literals, types, queries), so every clause order Hive accepts is accepted here and errors
//! name the clause that was wrong.

use std::collections::BTreeMap;

use cuve_catalog::{BucketSpec, ColumnDef, names};
use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::DataType as SqlType;
use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, ObjectName, ObjectNamePart, Statement as SqlStatement, Value,
};
use datafusion::sql::sqlparser::dialect::{HiveDialect, SparkSqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{EngineError, Result};
use crate::types::canonical_type;

pub mod compose;
pub mod limits;
pub mod params;
mod split;
pub mod tokens;

pub use params::Params;
pub use split::{StatementText, is_complete, split_statements};

/// A table named in a statement: `db.t` or `t` (resolved against the current database later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub database: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.database {
            Some(d) => write!(f, "{d}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// `CREATE [EXTERNAL] TABLE ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub table: TableName,
    pub external: bool,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDef>,
    pub comment: Option<String>,
    /// Partition columns; a CTAS may name them without types (`None`).
    pub partition_columns: Vec<(String, Option<String>, Option<String>)>,
    pub bucket: Option<BucketSpec>,
    pub format: Option<String>,
    pub location: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// `AS SELECT ...` (CTAS).
    pub query: Option<Box<ast::Query>>,
}

/// A partition spec as written: `(dt='2019-10-01', hour)`; `None` values are dynamic.
pub type PartitionSpec = Vec<(String, Option<String>)>;

/// What `ALTER TABLE` does.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    SetLocation {
        partition: Option<PartitionSpec>,
        location: String,
    },
    AddPartitions {
        if_not_exists: bool,
        partitions: Vec<(PartitionSpec, Option<String>)>,
    },
    DropPartitions {
        if_exists: bool,
        partitions: Vec<PartitionSpec>,
        purge: bool,
    },
    SetProperties(BTreeMap<String, String>),
    UnsetProperties(Vec<String>),
    /// `COMPACT [PARTITION (...)]`: merge small files now.
    Compact {
        partition: Option<PartitionSpec>,
    },
}

/// A recognised statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        comment: Option<String>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    Use(String),
    ShowDatabases {
        like: Option<String>,
    },
    ShowTables {
        database: Option<String>,
        like: Option<String>,
    },
    ShowPartitions(TableName),
    ShowCreateTable(TableName),
    ShowTableStats(TableName),
    ShowFunctions {
        like: Option<String>,
    },
    DescribeFunction(String),
    CreateTable(Box<CreateTable>),
    DropTable {
        table: TableName,
        if_exists: bool,
        purge: bool,
    },
    AlterTable {
        table: TableName,
        action: AlterAction,
    },
    MsckRepair(TableName),
    Describe {
        table: TableName,
        formatted: bool,
    },
    /// Hive `INSERT INTO|OVERWRITE [TABLE] t [PARTITION (...)] query`.
    Insert {
        table: TableName,
        overwrite: bool,
        columns: Vec<String>,
        partition: Option<PartitionSpec>,
        /// The `SELECT` or `VALUES` source, as parsed.
        source: Box<ast::Query>,
    },
    /// Anything else: DataFusion's statement, parsed (by DataFusion's own parser).
    Sql(Box<DfStatement>),
}

fn syntax(e: ParserError) -> EngineError {
    let msg = e.to_string();
    EngineError::Syntax(
        msg.strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string(),
    )
}

/// Parses one statement (without its `;`).
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let dialect = HiveDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql).map_err(syntax)?;
    let stmt = front(&mut p, sql)?;
    if let Some(stmt) = stmt {
        // Everything must have been consumed.
        let t = p.peek_token();
        if t.token != Token::EOF && t.token != Token::SemiColon {
            return Err(EngineError::Syntax(format!(
                "unexpected '{}' at line {}, column {}",
                t.token, t.span.start.line, t.span.start.column
            )));
        }
        return Ok(stmt);
    }
    datafusion_statement(sql).map(|s| Statement::Sql(Box::new(s)))
}

/// The statement parsed by DataFusion's parser (its own statements, such as `COPY` and
/// `EXPLAIN`, over sqlparser's) with its defaults (generic dialect, recursion limit), as
/// DataFusion's planner would parse it itself.
fn datafusion_statement(sql: &str) -> Result<DfStatement> {
    let mut parsed = DFParserBuilder::new(sql)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(EngineError::from_datafusion)?;
    match (parsed.pop_front(), parsed.len()) {
        (Some(stmt), 0) => Ok(stmt),
        (None, _) => Err(EngineError::Syntax("empty statement".into())),
        (Some(_), more) => Err(EngineError::Syntax(format!(
            "{} statements where one was expected; separate them with ';' in a script",
            more + 1
        ))),
    }
}

/// Front grammar; `Ok(None)` means "not ours, hand to DataFusion".
fn front(p: &mut Parser<'_>, sql: &str) -> Result<Option<Statement>> {
    let r = (|| -> Result<Option<Statement>, ParserError> {
        if p.parse_keyword(Keyword::CREATE) {
            if p.parse_one_of_keywords(&[Keyword::DATABASE, Keyword::SCHEMA])
                .is_some()
            {
                let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
                let name = p.parse_identifier()?.value;
                let mut comment = None;
                loop {
                    if p.parse_keyword(Keyword::COMMENT) {
                        comment = Some(p.parse_literal_string()?);
                    } else if p.parse_keyword(Keyword::LOCATION) {
                        p.parse_literal_string()?;
                    } else if p.parse_keyword(Keyword::WITH) {
                        let w = p.next_token();
                        if !matches!(&w.token, Token::Word(w) if w.value.eq_ignore_ascii_case("dbproperties"))
                        {
                            return p.expected("DBPROPERTIES", w);
                        }
                        parse_properties(p)?;
                    } else {
                        break;
                    }
                }
                return Ok(Some(Statement::CreateDatabase {
                    name,
                    if_not_exists,
                    comment,
                }));
            }
            let external = p.parse_keyword(Keyword::EXTERNAL);
            if p.parse_keyword(Keyword::TABLE) {
                return parse_create_table(p, external)
                    .map(|c| Some(Statement::CreateTable(Box::new(c))));
            }
            return Ok(None);
        }
        if p.parse_keyword(Keyword::DROP) {
            if p.parse_one_of_keywords(&[Keyword::DATABASE, Keyword::SCHEMA])
                .is_some()
            {
                let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                let name = p.parse_identifier()?.value;
                let cascade = matches!(
                    p.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]),
                    Some(Keyword::CASCADE)
                );
                return Ok(Some(Statement::DropDatabase {
                    name,
                    if_exists,
                    cascade,
                }));
            }
            if p.parse_keyword(Keyword::TABLE) {
                let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                let table = table_name(p)?;
                let purge = p.parse_keyword(Keyword::PURGE);
                return Ok(Some(Statement::DropTable {
                    table,
                    if_exists,
                    purge,
                }));
            }
            return Ok(None);
        }
        if p.parse_keyword(Keyword::USE) {
            let _ = p.parse_keyword(Keyword::DATABASE);
            return Ok(Some(Statement::Use(p.parse_identifier()?.value)));
        }
        if p.parse_keyword(Keyword::SHOW) {
            if p.parse_one_of_keywords(&[Keyword::DATABASES, Keyword::SCHEMAS])
                .is_some()
            {
                return Ok(Some(Statement::ShowDatabases {
                    like: parse_like(p)?,
                }));
            }
            if p.parse_keyword(Keyword::TABLES) {
                let database = if p
                    .parse_one_of_keywords(&[Keyword::IN, Keyword::FROM])
                    .is_some()
                {
                    Some(p.parse_identifier()?.value)
                } else {
                    None
                };
                return Ok(Some(Statement::ShowTables {
                    database,
                    like: parse_like(p)?,
                }));
            }
            if p.parse_keyword(Keyword::PARTITIONS) {
                return Ok(Some(Statement::ShowPartitions(table_name(p)?)));
            }
            if p.parse_keywords(&[Keyword::CREATE, Keyword::TABLE]) {
                return Ok(Some(Statement::ShowCreateTable(table_name(p)?)));
            }
            if p.parse_keyword(Keyword::FUNCTIONS) {
                return Ok(Some(Statement::ShowFunctions {
                    like: parse_like(p)?,
                }));
            }
            if p.parse_keyword(Keyword::TABLE) {
                let w = p.next_token();
                if matches!(&w.token, Token::Word(w) if w.value.eq_ignore_ascii_case("stats")) {
                    return Ok(Some(Statement::ShowTableStats(table_name(p)?)));
                }
                return p.expected("STATS", w);
            }
            return Ok(None);
        }
        if p.parse_one_of_keywords(&[Keyword::DESCRIBE, Keyword::DESC])
            .is_some()
        {
            if p.parse_keyword(Keyword::FUNCTION) {
                let _ = p.parse_keyword(Keyword::EXTENDED);
                let name = p.parse_identifier()?.value;
                return Ok(Some(Statement::DescribeFunction(name)));
            }
            let formatted = p
                .parse_one_of_keywords(&[Keyword::FORMATTED, Keyword::EXTENDED])
                .is_some();
            let _ = p.parse_keyword(Keyword::TABLE);
            return Ok(Some(Statement::Describe {
                table: table_name(p)?,
                formatted,
            }));
        }
        if p.parse_keyword(Keyword::MSCK) {
            let _ = p.parse_keyword(Keyword::REPAIR);
            p.expect_keyword(Keyword::TABLE)?;
            return Ok(Some(Statement::MsckRepair(table_name(p)?)));
        }
        if p.parse_keywords(&[Keyword::ALTER, Keyword::TABLE]) {
            let table = table_name(p)?;
            let action = parse_alter(p)?;
            return Ok(Some(Statement::AlterTable { table, action }));
        }
        if p.peek_keyword(Keyword::INSERT) {
            let stmt = p.parse_statement()?;
            if let SqlStatement::Insert(ins) = stmt {
                return insert_from_ast(ins).map(Some);
            }
            return Ok(None);
        }
        Ok(None)
    })();
    let _ = sql;
    r.map_err(syntax)
}

fn insert_from_ast(ins: ast::Insert) -> Result<Statement, ParserError> {
    let ast::TableObject::TableName(name) = ins.table else {
        return Err(ParserError::ParserError(
            "INSERT into a table function is not supported".into(),
        ));
    };
    let table = object_to_table(&name)?;
    let Some(source) = ins.source else {
        return Err(ParserError::ParserError(
            "INSERT needs a SELECT or VALUES source".into(),
        ));
    };
    let partition = ins
        .partitioned
        .map(|exprs| {
            exprs
                .iter()
                .map(partition_item)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let columns = ins
        .columns
        .iter()
        .map(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .ok_or_else(|| ParserError::ParserError(format!("bad column '{c}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Statement::Insert {
        table,
        overwrite: ins.overwrite,
        columns,
        partition,
        source,
    })
}

fn partition_item(e: &SqlExpr) -> Result<(String, Option<String>), ParserError> {
    match e {
        SqlExpr::Identifier(i) => Ok((i.value.clone(), None)),
        SqlExpr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } => {
            let SqlExpr::Identifier(i) = left.as_ref() else {
                return Err(ParserError::ParserError(format!(
                    "bad partition spec item '{e}': expected column = value"
                )));
            };
            Ok((i.value.clone(), Some(literal_text(right)?)))
        }
        other => Err(ParserError::ParserError(format!(
            "bad partition spec item '{other}': expected column = value"
        ))),
    }
}

fn literal_text(e: &SqlExpr) -> Result<String, ParserError> {
    match e {
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.clone()),
            Value::Number(n, _) => Ok(n.to_string()),
            Value::Boolean(b) => Ok(b.to_string()),
            other => Err(ParserError::ParserError(format!(
                "partition values must be literals, found {other}"
            ))),
        },
        SqlExpr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => Ok(format!("-{}", literal_text(expr)?)),
        other => Err(ParserError::ParserError(format!(
            "partition values must be literals, found {other}"
        ))),
    }
}

fn parse_like(p: &mut Parser<'_>) -> Result<Option<String>, ParserError> {
    if p.parse_keyword(Keyword::LIKE) {
        return Ok(Some(p.parse_literal_string()?));
    }
    // Hive also accepts a bare pattern: SHOW TABLES 'stream*'.
    if let Token::SingleQuotedString(_) = p.peek_token().token {
        return Ok(Some(p.parse_literal_string()?));
    }
    Ok(None)
}

fn object_to_table(name: &ObjectName) -> Result<TableName, ParserError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
            other => Err(ParserError::ParserError(format!(
                "bad table name part {other}"
            ))),
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [t] => Ok(TableName {
            database: None,
            name: t.clone(),
        }),
        [d, t] => Ok(TableName {
            database: Some(d.clone()),
            name: t.clone(),
        }),
        [c, d, t] if c.eq_ignore_ascii_case(crate::CATALOG_NAME) => Ok(TableName {
            database: Some(d.clone()),
            name: t.clone(),
        }),
        _ => Err(ParserError::ParserError(format!(
            "bad table name '{name}': use db.table or table"
        ))),
    }
}

fn table_name(p: &mut Parser<'_>) -> Result<TableName, ParserError> {
    let name = p.parse_object_name(false)?;
    object_to_table(&name)
}

fn parse_properties(p: &mut Parser<'_>) -> Result<BTreeMap<String, String>, ParserError> {
    p.expect_token(&Token::LParen)?;
    let items = p.parse_comma_separated(|p| {
        let k = p.parse_literal_string()?;
        p.expect_token(&Token::Eq)?;
        let v = match p.next_token().token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            other => {
                return Err(ParserError::ParserError(format!(
                    "property '{k}': expected a quoted value, found {other}"
                )));
            }
        };
        Ok((k.trim().to_lowercase(), v))
    })?;
    p.expect_token(&Token::RParen)?;
    Ok(items.into_iter().collect())
}

fn parse_ident_list(p: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    p.expect_token(&Token::LParen)?;
    let v = p.parse_comma_separated(|p| {
        let id = p.parse_identifier()?.value;
        // SORTED BY (c ASC|DESC)
        let _ = p.parse_one_of_keywords(&[Keyword::ASC, Keyword::DESC]);
        Ok(id)
    })?;
    p.expect_token(&Token::RParen)?;
    Ok(v)
}

/// A column type in Hive's syntax. sqlparser's Hive dialect does not parse `MAP<K, V>` or
/// `STRUCT<a: T>`; its Spark dialect (the same DDL types) does, so the type's tokens (up to the
/// next `,`, `)`, `COMMENT`, `NOT` or `NULL` outside brackets) are parsed again with it.
fn hive_data_type(p: &mut Parser<'_>) -> Result<SqlType, ParserError> {
    let mut text = String::new();
    let mut depth = 0i32;
    loop {
        let tok = p.peek_token().token;
        let stop = match &tok {
            Token::EOF | Token::SemiColon => true,
            Token::Comma | Token::RParen => depth == 0,
            Token::Word(w) => {
                depth == 0
                    && !text.is_empty()
                    && matches!(w.keyword, Keyword::COMMENT | Keyword::NOT | Keyword::NULL)
            }
            _ => false,
        };
        if stop {
            break;
        }
        match &tok {
            Token::Lt | Token::LParen => depth += 1,
            Token::Gt | Token::RParen => depth -= 1,
            Token::ShiftRight => depth -= 2,
            _ => {}
        }
        if depth < 0 {
            return Err(ParserError::ParserError(format!(
                "unbalanced brackets in column type '{text}{tok}'"
            )));
        }
        text.push_str(&tok.to_string());
        text.push(' ');
        p.next_token();
    }
    let mut types = Parser::new(&SparkSqlDialect {}).try_with_sql(&text)?;
    let ty = types.parse_data_type()?;
    let rest = types.peek_token().token;
    if rest != Token::EOF {
        return Err(ParserError::ParserError(format!(
            "unexpected '{rest}' after column type in '{}' (a missing comma?)",
            text.trim()
        )));
    }
    Ok(ty)
}

fn column_def(p: &mut Parser<'_>) -> Result<ColumnDef, ParserError> {
    let name = p.parse_identifier()?.value;
    let ty = hive_data_type(p)?;
    let data_type = canonical_type(&ty)
        .map_err(|e| ParserError::ParserError(format!("column '{name}': {}", e.user_message())))?;
    let mut comment = None;
    loop {
        if p.parse_keyword(Keyword::COMMENT) {
            comment = Some(p.parse_literal_string()?);
        } else if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) || p.parse_keyword(Keyword::NULL)
        {
            // accepted, not enforced (Hive does not enforce either)
        } else {
            break;
        }
    }
    Ok(ColumnDef {
        name,
        data_type,
        comment,
        sensitive: false,
    })
}

fn parse_create_table(p: &mut Parser<'_>, external: bool) -> Result<CreateTable, ParserError> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let table = table_name(p)?;
    let mut columns = Vec::new();
    if p.consume_token(&Token::LParen) {
        columns = p.parse_comma_separated(column_def)?;
        p.expect_token(&Token::RParen)?;
    }
    let mut c = CreateTable {
        table,
        external,
        if_not_exists,
        columns,
        comment: None,
        partition_columns: vec![],
        bucket: None,
        format: None,
        location: None,
        properties: BTreeMap::new(),
        query: None,
    };
    loop {
        if p.parse_keyword(Keyword::COMMENT) {
            c.comment = Some(p.parse_literal_string()?);
        } else if p.parse_keywords(&[Keyword::PARTITIONED, Keyword::BY]) {
            p.expect_token(&Token::LParen)?;
            c.partition_columns = p.parse_comma_separated(|p| {
                let name = p.parse_identifier()?.value;
                let next = p.peek_token().token;
                if next == Token::Comma || next == Token::RParen {
                    return Ok((name, None, None));
                }
                let ty = p.parse_data_type()?;
                let ty = canonical_type(&ty).map_err(|e| {
                    ParserError::ParserError(format!(
                        "partition column '{name}': {}",
                        e.user_message()
                    ))
                })?;
                let comment = if p.parse_keyword(Keyword::COMMENT) {
                    Some(p.parse_literal_string()?)
                } else {
                    None
                };
                Ok((name, Some(ty), comment))
            })?;
            p.expect_token(&Token::RParen)?;
        } else if p.parse_keywords(&[Keyword::CLUSTERED, Keyword::BY]) {
            let cols = parse_ident_list(p)?;
            let sorted_by = if p.parse_keywords(&[Keyword::SORTED, Keyword::BY]) {
                parse_ident_list(p)?
            } else {
                vec![]
            };
            p.expect_keyword(Keyword::INTO)?;
            let n = p.parse_literal_uint()?;
            p.expect_keyword(Keyword::BUCKETS)?;
            if n == 0 || n > 100_000 {
                return Err(ParserError::ParserError(format!(
                    "INTO {n} BUCKETS: the bucket count must be between 1 and 100000"
                )));
            }
            c.bucket = Some(BucketSpec {
                columns: cols,
                sorted_by,
                num_buckets: n as u32,
            });
        } else if p.parse_keywords(&[Keyword::STORED, Keyword::AS]) {
            c.format = Some(p.parse_identifier()?.value.to_uppercase());
        } else if p.parse_keyword(Keyword::LOCATION) {
            c.location = Some(p.parse_literal_string()?);
        } else if p.parse_keyword(Keyword::TBLPROPERTIES) {
            c.properties.extend(parse_properties(p)?);
        } else if p.parse_keyword(Keyword::AS) {
            c.query = Some(p.parse_query()?);
            break;
        } else {
            break;
        }
    }
    Ok(c)
}

fn parse_partition_spec(p: &mut Parser<'_>) -> Result<PartitionSpec, ParserError> {
    p.expect_token(&Token::LParen)?;
    let items = p.parse_comma_separated(|p| {
        let e = p.parse_expr()?;
        partition_item(&e)
    })?;
    p.expect_token(&Token::RParen)?;
    Ok(items)
}

fn parse_alter(p: &mut Parser<'_>) -> Result<AlterAction, ParserError> {
    if p.parse_keyword(Keyword::ADD) {
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let mut partitions = Vec::new();
        while p.parse_keyword(Keyword::PARTITION) {
            let spec = parse_partition_spec(p)?;
            let loc = if p.parse_keyword(Keyword::LOCATION) {
                Some(p.parse_literal_string()?)
            } else {
                None
            };
            partitions.push((spec, loc));
            let _ = p.consume_token(&Token::Comma);
        }
        if partitions.is_empty() {
            return p.expected("PARTITION (...)", p.peek_token());
        }
        return Ok(AlterAction::AddPartitions {
            if_not_exists,
            partitions,
        });
    }
    if p.parse_keyword(Keyword::DROP) {
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let mut partitions = Vec::new();
        while p.parse_keyword(Keyword::PARTITION) {
            partitions.push(parse_partition_spec(p)?);
            let _ = p.consume_token(&Token::Comma);
        }
        if partitions.is_empty() {
            return p.expected("PARTITION (...)", p.peek_token());
        }
        let purge = p.parse_keyword(Keyword::PURGE);
        return Ok(AlterAction::DropPartitions {
            if_exists,
            partitions,
            purge,
        });
    }
    let partition = if p.parse_keyword(Keyword::PARTITION) {
        Some(parse_partition_spec(p)?)
    } else {
        None
    };
    if matches!(&p.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("compact")) {
        p.next_token();
        let partition = match partition {
            Some(spec) => Some(spec),
            None if p.parse_keyword(Keyword::PARTITION) => Some(parse_partition_spec(p)?),
            None => None,
        };
        return Ok(AlterAction::Compact { partition });
    }
    if p.parse_keywords(&[Keyword::SET, Keyword::LOCATION]) {
        return Ok(AlterAction::SetLocation {
            partition,
            location: p.parse_literal_string()?,
        });
    }
    if partition.is_none() && p.parse_keywords(&[Keyword::SET, Keyword::TBLPROPERTIES]) {
        return Ok(AlterAction::SetProperties(parse_properties(p)?));
    }
    if partition.is_none() && p.parse_keyword(Keyword::UNSET) {
        p.expect_keyword(Keyword::TBLPROPERTIES)?;
        let _ = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        p.expect_token(&Token::LParen)?;
        let keys = p.parse_comma_separated(|p| Ok(p.parse_literal_string()?.to_lowercase()))?;
        p.expect_token(&Token::RParen)?;
        return Ok(AlterAction::UnsetProperties(keys));
    }
    p.expected(
        "ADD PARTITION, DROP PARTITION, SET LOCATION, SET TBLPROPERTIES, UNSET TBLPROPERTIES or COMPACT",
        p.peek_token(),
    )
}

/// Canonicalises the names in a table reference.
pub fn canonical_table(t: &TableName) -> Result<TableName> {
    Ok(TableName {
        database: t
            .database
            .as_deref()
            .map(names::database_name)
            .transpose()?,
        name: names::table_name(&t.name)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hive_create_table() {
        let s = parse_statement(
            "CREATE EXTERNAL TABLE IF NOT EXISTS korea_naver_log.stream_log (
               user_id STRING COMMENT 'who', n BIGINT, tags ARRAY<STRING>)
             COMMENT 'logs' PARTITIONED BY (dt STRING)
             CLUSTERED BY (user_id) SORTED BY (user_id) INTO 16 BUCKETS
             STORED AS PARQUET LOCATION '/tmp/x' TBLPROPERTIES ('sensitive_columns'='n')",
        )
        .unwrap();
        let Statement::CreateTable(c) = s else {
            panic!("{s:?}")
        };
        assert!(c.external && c.if_not_exists);
        assert_eq!(c.table.database.as_deref(), Some("korea_naver_log"));
        assert_eq!(c.columns.len(), 3);
        assert_eq!(c.columns[0].comment.as_deref(), Some("who"));
        assert_eq!(c.columns[2].data_type, "ARRAY<STRING>");
        assert_eq!(c.partition_columns[0].1.as_deref(), Some("STRING"));
        assert_eq!(c.bucket.as_ref().unwrap().num_buckets, 16);
        assert_eq!(c.format.as_deref(), Some("PARQUET"));
        assert_eq!(c.properties["sensitive_columns"], "n");
    }

    #[test]
    fn parses_compact() {
        let s = parse_statement("ALTER TABLE d.t COMPACT").unwrap();
        assert!(matches!(
            s,
            Statement::AlterTable {
                action: AlterAction::Compact { partition: None },
                ..
            }
        ));
        for sql in [
            "ALTER TABLE d.t COMPACT PARTITION (dt='2019-10-01')",
            "ALTER TABLE d.t PARTITION (dt='2019-10-01') COMPACT",
        ] {
            let s = parse_statement(sql).unwrap();
            assert!(
                matches!(s, Statement::AlterTable { action: AlterAction::Compact { partition: Some(ref p) }, .. } if p.len() == 1),
                "{sql}"
            );
        }
        assert!(parse_statement("ALTER TABLE d.t COMPACT now").is_err());
    }

    #[test]
    fn parses_partitions_and_inserts() {
        let s = parse_statement("ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt='2019-10-01') LOCATION '/x' PARTITION (dt='2019-10-02')").unwrap();
        assert!(
            matches!(s, Statement::AlterTable { action: AlterAction::AddPartitions { ref partitions, .. }, .. } if partitions.len() == 2)
        );
        let s = parse_statement(
            "INSERT OVERWRITE TABLE d.t PARTITION (dt='2019-10-01') SELECT a FROM s",
        )
        .unwrap();
        let Statement::Insert {
            overwrite,
            partition,
            ..
        } = s
        else {
            panic!()
        };
        assert!(overwrite);
        assert_eq!(
            partition.unwrap()[0],
            ("dt".to_string(), Some("2019-10-01".to_string()))
        );
        assert!(matches!(
            parse_statement("SELECT 1").unwrap(),
            Statement::Sql(_)
        ));
        assert!(matches!(
            parse_statement("SHOW TABLE STATS d.t").unwrap(),
            Statement::ShowTableStats(_)
        ));
        let e = parse_statement("CREATE TABLE t (a STRING) CLUSTERED BY (a) INTO 0 BUCKETS")
            .unwrap_err();
        assert!(e.to_string().contains("bucket count"), "{e}");
        let e = parse_statement("ALTER TABLE t FROB")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ADD PARTITION"), "{e}");
    }
}
