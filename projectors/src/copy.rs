//! Rows in PostgreSQL's binary `COPY` format, for the bulk path of catch-up.
//!
//! `COPY ... from stdin (format binary)` is the cheapest way to put many new rows into a
//! table: no per-row executor work, no text parsing. A projection uses it for rows it expects
//! to be new, inside a savepoint: `COPY` has no `on conflict`, so a replay that meets a
//! primary key rolls the savepoint back and the handler falls back to its idempotent
//! statement (`projections/sessions.rs`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A value that can be a field of a binary `COPY` row.
pub trait Field {
    fn put(&self, rows: &mut CopyRows);
}

/// Binary `COPY` data: the header, then rows, closed by [`CopyRows::copy_in`].
pub struct CopyRows {
    buf: Vec<u8>,
    rows: u64,
}

impl Default for CopyRows {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyRows {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        // Flags (no OIDs), then the length of the header extension.
        buf.extend_from_slice(&0_i32.to_be_bytes());
        buf.extend_from_slice(&0_i32.to_be_bytes());
        Self { buf, rows: 0 }
    }

    /// Starts a row of `fields` fields; exactly that many must follow.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
        self
    }

    pub fn field(&mut self, value: &(impl Field + ?Sized)) -> &mut Self {
        value.put(self);
        self
    }

    /// A `jsonb` field: the format version, then the JSON text.
    pub fn jsonb<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> sqlx::Result<&mut Self> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0_i32.to_be_bytes());
        self.buf.push(1);
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        self.patch_length(at)?;
        Ok(self)
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1_i32).to_be_bytes());
        self
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn bytes(&mut self, bytes: &[u8]) {
        // Field values here are far below 2 GiB (one event's text).
        let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn patch_length(&mut self, at: usize) -> sqlx::Result<()> {
        let length = i32::try_from(self.buf.len() - at - 4)
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// Runs `statement` (`copy <table> (<columns>) from stdin (format binary)`) with these
    /// rows. Returns the number of rows copied.
    pub async fn copy_in(
        mut self,
        connection: &mut PgConnection,
        statement: &str,
    ) -> sqlx::Result<u64> {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        let mut copy = connection.copy_in_raw(statement).await?;
        copy.send(self.buf).await?;
        copy.finish().await
    }
}

impl Field for Uuid {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(self.as_bytes());
    }
}

impl Field for str {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(self.as_bytes());
    }
}

impl Field for String {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(self.as_bytes());
    }
}

impl Field for &str {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(self.as_bytes());
    }
}

impl Field for bool {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(&[u8::from(*self)]);
    }
}

impl Field for i32 {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(&self.to_be_bytes());
    }
}

impl Field for i64 {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(&self.to_be_bytes());
    }
}

/// `timestamptz`: microseconds since 2000-01-01 UTC.
impl Field for DateTime<Utc> {
    fn put(&self, rows: &mut CopyRows) {
        rows.bytes(&(self.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, rows: &mut CopyRows) {
        match self {
            Some(value) => value.put(rows),
            None => {
                rows.null();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn rows_are_framed_as_postgres_reads_them() {
        let mut rows = CopyRows::new();
        let second = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 1)
            .single()
            .expect("a valid time");
        rows.row(4)
            .field(&7_i32)
            .field(&None::<String>)
            .field(&second);
        rows.jsonb(&[1, 2]).expect("serialises");
        let header = 11 + 4 + 4;
        assert_eq!(&rows.buf[..11], b"PGCOPY\n\xff\r\n\0");
        let body = &rows.buf[header..];
        assert_eq!(&body[..2], &4_i16.to_be_bytes());
        assert_eq!(&body[2..10], &[0, 0, 0, 4, 0, 0, 0, 7]);
        assert_eq!(&body[10..14], &(-1_i32).to_be_bytes());
        assert_eq!(&body[14..18], &8_i32.to_be_bytes());
        assert_eq!(&body[18..26], &1_000_000_i64.to_be_bytes());
        assert_eq!(&body[26..30], &6_i32.to_be_bytes());
        assert_eq!(&body[30..], b"\x01[1,2]");
        assert_eq!(rows.rows(), 1);
    }
}
