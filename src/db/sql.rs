//! The SQL facade every store operation is written against.
//!
//! The per-resource modules (`users`, `chats`, `messages`, ...) hold each
//! statement once, in a dialect both engines run (`$n`/`?n` parameters,
//! `RETURNING`, `ON CONFLICT`, `CASE` instead of two-argument `max`), and
//! execute it through a [`Conn`]: either an SQLite connection (rusqlite,
//! the default and fast path: rows are read in place, parameters bound by
//! reference, nothing is copied twice) or a PostgreSQL connection
//! ([`super::pg::PgConn`], tokio-postgres, driven from the same blocking
//! threads). Nothing outside `src/db/` sees a driver type: callers get
//! [`DbError`], which maps to an [`AppError`] here.
//!
//! Why a facade over two drivers instead of a trait with two
//! implementations of every operation: each statement exists once, so the
//! two stores cannot drift apart in behaviour (the black-box suite runs on
//! both), and the single-writer design (one writer thread, group commit,
//! commit-ordered event ids) is shared instead of re-implemented.

use crate::error::AppError;

/// Result of a store call.
pub type DbResult<T> = Result<T, DbError>;

/// What can go wrong in the store, without naming a driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `query_row` found nothing (see [`OptionalExtension`]).
    #[error("query returned no rows")]
    NoRows,
    /// The database cannot be reached (PostgreSQL down or restarting).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A UNIQUE / foreign-key / NOT NULL constraint refused a write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The disk under the database is full.
    #[error("database disk is full")]
    Full,
    /// Anything else: a bug or corruption.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                AppError::Unavailable
            }
            DbError::Full => AppError::InsufficientStorage("the database disk is full".into()),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRows,
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => DbError::Full,
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
                DbError::Constraint(e.to_string())
            }
            _ => DbError::Other(e.into()),
        }
    }
}

/// `query_row(...).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    /// Turns [`DbError::NoRows`] into `Ok(None)`.
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> OptionalExtension<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value: a parameter (borrowed from the caller) or a column (borrowed
/// from the row).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value that can be bound as a parameter.
pub trait ToSql {
    /// The value to bind.
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_sql!(i64, i32, u32, u64, usize, u16, u8);

impl ToSql for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToSql for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl ToSql for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToSql for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        *self
    }
}

/// A type a column can be read as.
pub trait FromSql: Sized {
    /// Converts, or says why not.
    fn from_sql(v: Value<'_>) -> DbResult<Self>;
}

fn wrong_type(want: &str, got: Value<'_>) -> DbError {
    DbError::Other(anyhow::anyhow!("column is {got:?}, expected {want}"))
}

macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_sql(v: Value<'_>) -> DbResult<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| DbError::Other(anyhow::anyhow!("{i} is out of range"))),
                    other => Err(wrong_type(stringify!($t), other)),
                }
            }
        }
    )*};
}
int_from_sql!(i64, i32, u32, u64, usize);

impl FromSql for bool {
    fn from_sql(v: Value<'_>) -> DbResult<Self> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => Err(wrong_type("bool", other)),
        }
    }
}
impl FromSql for f64 {
    fn from_sql(v: Value<'_>) -> DbResult<Self> {
        match v {
            Value::Real(f) => Ok(f),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Ok(i as f64),
            other => Err(wrong_type("f64", other)),
        }
    }
}
impl FromSql for String {
    fn from_sql(v: Value<'_>) -> DbResult<Self> {
        match v {
            Value::Text(s) => Ok(s.to_string()),
            other => Err(wrong_type("text", other)),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_sql(v: Value<'_>) -> DbResult<Self> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(wrong_type("blob", other)),
        }
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(v: Value<'_>) -> DbResult<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_sql(v).map(Some),
        }
    }
}

/// Parameters of one statement.
pub trait Params {
    /// The values, in order.
    fn values(&self) -> Vec<Value<'_>>;
}

impl<T: ToSql> Params for &[T] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToSql::to_value).collect()
    }
}
impl<T: ToSql, const N: usize> Params for &[T; N] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToSql::to_value).collect()
    }
}
impl Params for [&dyn ToSql; 0] {
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}
impl Params for () {
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}
impl<T: ToSql> Params for Vec<T> {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToSql::to_value).collect()
    }
}
impl<T: ToSql> Params for &Vec<T> {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(ToSql::to_value).collect()
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<Value<'_>> {
                self.iter().map(ToSql::to_value).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// `params![a, b, c]`: positional parameters of mixed types.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::db::sql::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::sql::ToSql),+] as &[&dyn $crate::db::sql::ToSql] };
}
pub use crate::sql_params as params;

/// One connection of either engine.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(&'a super::pg::PgConn),
}

/// A prepared statement.
pub enum Stmt<'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    /// Not cached: statements whose text varies (`IN` lists of any length).
    SqliteOnce(rusqlite::Statement<'a>),
    Pg(&'a super::pg::PgConn, tokio_postgres::Statement),
}

/// A column index (only `usize`: statements name columns by position).
pub trait RowIndex {
    /// The position.
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `idx` as `T` (`get::<_, T>(i)`, as in rusqlite).
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> DbResult<T> {
        let idx = idx.index();
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef as V;
                let v = match r.get_ref(idx)? {
                    V::Null => Value::Null,
                    V::Integer(i) => Value::Int(i),
                    V::Real(f) => Value::Real(f),
                    V::Text(t) => {
                        Value::Text(std::str::from_utf8(t).map_err(|e| DbError::Other(e.into()))?)
                    }
                    V::Blob(b) => Value::Blob(b),
                };
                T::from_sql(v)
            }
            Row::Pg(r) => {
                let v: super::pg::PgValue = r.try_get(idx).map_err(|e| {
                    let ty = r.columns().get(idx).map(|c| c.type_().to_string());
                    DbError::Other(anyhow::anyhow!("column {idx} ({ty:?}): {e:#}"))
                })?;
                T::from_sql(v.as_ref())
            }
        }
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => V::Null,
            Value::Int(i) => V::Integer(i),
            Value::Real(f) => V::Real(f),
            Value::Text(s) => V::Text(s.as_bytes()),
            Value::Blob(b) => V::Blob(b),
        }))
    }
}

impl<'c> Conn<'c> {
    /// Whether this is PostgreSQL (for the few statements that differ).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// Prepares `sql` (cached per connection).
    pub fn prepare_cached(&self, sql: &str) -> DbResult<Stmt<'c>> {
        match *self {
            Conn::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Conn::Pg(c) => Ok(Stmt::Pg(c, c.prepare(sql)?)),
        }
    }

    /// Prepares `sql` without caching it: for statements whose text varies
    /// (`IN` lists of any length), which would push the hot statements out.
    pub fn prepare(&self, sql: &str) -> DbResult<Stmt<'c>> {
        match *self {
            Conn::Sqlite(c) => Ok(Stmt::SqliteOnce(c.prepare(sql)?)),
            Conn::Pg(c) => Ok(Stmt::Pg(c, c.prepare_once(sql)?)),
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> DbResult<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// The first row of a query, mapped; [`DbError::NoRows`] when empty.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> DbResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> DbResult<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Two independent queries, every row of each mapped; on PostgreSQL
    /// sent together, one round trip for both.
    pub fn query_map2<T1, T2, P1, P2, F1, F2>(
        &self,
        first: (&str, P1, F1),
        second: (&str, P2, F2),
    ) -> DbResult<(Vec<T1>, Vec<T2>)>
    where
        P1: Params,
        P2: Params,
        F1: FnMut(&Row<'_>) -> DbResult<T1>,
        F2: FnMut(&Row<'_>) -> DbResult<T2>,
    {
        let (sql1, p1, mut f1) = first;
        let (sql2, p2, mut f2) = second;
        match *self {
            Conn::Sqlite(_) => Ok((
                self.prepare_cached(sql1)?
                    .query_map(p1, f1)?
                    .collect::<DbResult<_>>()?,
                self.prepare_cached(sql2)?
                    .query_map(p2, f2)?
                    .collect::<DbResult<_>>()?,
            )),
            Conn::Pg(c) => {
                let (s1, s2) = (c.prepare(sql1)?, c.prepare(sql2)?);
                let (v1, v2) = (p1.values(), p2.values());
                let (r1, r2) = (super::pg::refs(&v1), super::pg::refs(&v2));
                let mut rows = c.query_all(&[(&s1, &r1), (&s2, &r2)])?.into_iter();
                let (Some(a), Some(b)) = (rows.next(), rows.next()) else {
                    return Err(DbError::Other(anyhow::anyhow!(
                        "two queries, not two answers"
                    )));
                };
                Ok((
                    a.iter().map(|r| f1(&Row::Pg(r))).collect::<DbResult<_>>()?,
                    b.iter().map(|r| f2(&Row::Pg(r))).collect::<DbResult<_>>()?,
                ))
            }
        }
    }

    /// One query run with each of `sets`, every row mapped; on PostgreSQL
    /// sent together (a round trip per 64 sets instead of one per set).
    pub fn query_map_many<T, P, F>(&self, sql: &str, sets: &[P], mut f: F) -> DbResult<Vec<Vec<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> DbResult<T>,
    {
        match *self {
            Conn::Sqlite(_) => {
                let mut stmt = self.prepare_cached(sql)?;
                sets.iter()
                    .map(|set| stmt.query_map(set.values(), &mut f)?.collect())
                    .collect()
            }
            Conn::Pg(c) => {
                let stmt = c.prepare(sql)?;
                let mut out = Vec::with_capacity(sets.len());
                for chunk in sets.chunks(64) {
                    let values: Vec<Vec<Value<'_>>> = chunk.iter().map(Params::values).collect();
                    let refs: Vec<_> = values.iter().map(|v| super::pg::refs(v)).collect();
                    let queries: Vec<_> = refs.iter().map(|r| (&stmt, r.as_slice())).collect();
                    for rows in c.query_all(&queries)? {
                        out.push(
                            rows.iter()
                                .map(|r| f(&Row::Pg(r)))
                                .collect::<DbResult<_>>()?,
                        );
                    }
                }
                Ok(out)
            }
        }
    }

    /// Waits for statements queued by [`Stmt::execute_later`]; the first
    /// error among them. The writer calls it at the end of every op.
    pub fn flush(&self) -> DbResult<()> {
        match *self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Pg(c) => c.flush(),
        }
    }

    /// Runs statements without parameters or results (DDL, pragmas).
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match *self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c) => c.batch(sql),
        }
    }
}

impl<'a> Stmt<'a> {
    /// The SQLite statement, cached or not (never called on PostgreSQL).
    fn sqlite(&mut self) -> &mut rusqlite::Statement<'a> {
        match self {
            Stmt::Sqlite(s) => s,
            Stmt::SqliteOnce(s) => s,
            Stmt::Pg(..) => unreachable!("a PostgreSQL statement"),
        }
    }

    /// Runs the statement; returns the rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> DbResult<usize> {
        let values = params.values();
        match self {
            Stmt::Pg(c, s) => c.execute(s, &values),
            sqlite => Ok(sqlite
                .sqlite()
                .execute(rusqlite::params_from_iter(values.iter()))?),
        }
    }

    /// Runs a write whose result the op does not read. On the PostgreSQL
    /// writer it is sent with the next statement that needs an answer (one
    /// round trip for both); an error shows at that statement or at the op's
    /// end, and the writer rolls the op back. Elsewhere it runs at once.
    pub fn execute_later<P: Params>(&mut self, params: P) -> DbResult<()> {
        match self {
            Stmt::Pg(c, s) => c.execute_later(s, &params.values()),
            _ => self.execute(params).map(|_| ()),
        }
    }

    /// The first row, mapped; [`DbError::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> DbResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> DbResult<T>,
    {
        let values = params.values();
        match self {
            Stmt::Pg(c, s) => match c.query(s, &values)?.first() {
                Some(r) => f(&Row::Pg(r)),
                None => Err(DbError::NoRows),
            },
            sqlite => {
                let mut rows = sqlite
                    .sqlite()
                    .query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(DbError::NoRows),
                }
            }
        }
    }

    /// Every row, mapped (collected: callers collect anyway).
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> DbResult<std::vec::IntoIter<DbResult<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> DbResult<T>,
    {
        let values = params.values();
        let mut out = Vec::new();
        match self {
            Stmt::Pg(c, s) => {
                for r in &c.query(s, &values)? {
                    out.push(f(&Row::Pg(r)));
                }
            }
            sqlite => {
                let mut rows = sqlite
                    .sqlite()
                    .query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
            }
        }
        Ok(out.into_iter())
    }

    /// Whether the query returns at least one row.
    pub fn exists<P: Params>(&mut self, params: P) -> DbResult<bool> {
        self.query_row(params, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }
}

/// Rewrites SQLite-style parameters (`?`, `?N`) as PostgreSQL's `$N`,
/// leaving string literals and quoted identifiers alone. A bare `?` is
/// numbered as SQLite numbers it: one more than the largest number so far.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest: u32 = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    largest += 1;
                    out.push_str(&largest.to_string());
                } else {
                    largest = largest.max(digits.parse().unwrap_or(0));
                    out.push_str(&digits);
                }
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn parameters_become_dollar_numbers_outside_literals() {
        assert_eq!(
            to_postgres("SELECT ?1, ?2 WHERE a = '?' AND b = ?1"),
            "SELECT $1, $2 WHERE a = '?' AND b = $1"
        );
        assert_eq!(to_postgres("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        assert_eq!(to_postgres("\"we?ird\" = ?12"), "\"we?ird\" = $12");
        // as SQLite numbers them: a bare `?` follows the largest so far
        assert_eq!(to_postgres("?2, ?, ?1, ?"), "$2, $3, $1, $4");
    }
}
