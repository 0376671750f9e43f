//! How the id newtypes of [`crate::model`] are stored: as 64-bit integers,
//! on either engine (through the [`super::sql`] facade).

use super::sql::{DbResult, FromSql, ToSql, Value};
use crate::model::{ChatId, EventId, MessageId, UserId};

macro_rules! sql_id {
    ($($name:ident),*) => {$(
        impl ToSql for $name {
            fn to_value(&self) -> Value<'_> {
                Value::Int(self.0)
            }
        }

        impl FromSql for $name {
            fn from_sql(v: Value<'_>) -> DbResult<Self> {
                i64::from_sql(v).map($name)
            }
        }
    )*};
}

sql_id!(UserId, ChatId, MessageId, EventId);
