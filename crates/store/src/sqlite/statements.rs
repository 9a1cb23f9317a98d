//! The writer connection's prepared statements, kept for the connection's life.
//!
//! rusqlite's statement cache finds a statement by hashing and comparing its whole SQL text
//! (several hundred bytes for the upserts) and keeps an LRU order, on every use: about 6 % of
//! the writer thread's time, whose work per lifecycle step is a dozen statements. The
//! writer's SQL is all `&'static str`, so here a statement is found by the address of its
//! text among a few dozen, with no hashing.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, Statement};

/// Statements prepared on one connection, found by the address of their SQL text.
pub(crate) struct Statements<'k> {
    conn: &'k Connection,
    /// Statements not in use, with the address of their text.
    idle: RefCell<Vec<(usize, Statement<'k>)>>,
}

impl<'k> Statements<'k> {
    /// No statements yet, on `conn`.
    pub(crate) fn new(conn: &'k Connection) -> Self {
        Self {
            conn,
            idle: RefCell::new(Vec::new()),
        }
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &'k Connection {
        self.conn
    }

    /// The statement for `sql`, prepared on first use; it is back among the idle ones when
    /// the returned guard drops. A statement already in use (nested use of the same text)
    /// is prepared once more.
    ///
    /// # Errors
    /// `sql` does not prepare.
    pub(crate) fn prepare(&self, sql: &'static str) -> rusqlite::Result<Cached<'_, 'k>> {
        let key = sql.as_ptr() as usize;
        let found = {
            let mut idle = self.idle.borrow_mut();
            idle.iter()
                .position(|(k, _)| *k == key)
                .map(|at| idle.swap_remove(at).1)
        };
        let statement = match found {
            Some(statement) => statement,
            None => self.conn.prepare(sql)?,
        };
        Ok(Cached {
            home: self,
            key,
            statement: Some(statement),
        })
    }
}

/// A statement in use; back to its [`Statements`] when dropped.
pub(crate) struct Cached<'s, 'k> {
    home: &'s Statements<'k>,
    key: usize,
    statement: Option<Statement<'k>>,
}

impl<'k> Deref for Cached<'_, 'k> {
    type Target = Statement<'k>;

    fn deref(&self) -> &Statement<'k> {
        self.statement.as_ref().expect("present until dropped")
    }
}

impl<'k> DerefMut for Cached<'_, 'k> {
    fn deref_mut(&mut self) -> &mut Statement<'k> {
        self.statement.as_mut().expect("present until dropped")
    }
}

impl Drop for Cached<'_, '_> {
    fn drop(&mut self) {
        if let Some(statement) = self.statement.take() {
            self.home.idle.borrow_mut().push((self.key, statement));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_prepared_once_and_reused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let statements = Statements::new(&conn);
        const INSERT: &str = "INSERT INTO t (x) VALUES (?1)";
        for x in 0..3 {
            statements.prepare(INSERT).unwrap().execute([x]).unwrap();
        }
        assert_eq!(statements.idle.borrow().len(), 1);
        // A statement runs while another is in use.
        {
            let mut outer = statements.prepare("SELECT x FROM t ORDER BY x").unwrap();
            let mut rows = outer.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let x: i64 = row.get(0).unwrap();
                statements
                    .prepare(INSERT)
                    .unwrap()
                    .execute([x + 10])
                    .unwrap();
            }
        }
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 6);
        assert_eq!(statements.idle.borrow().len(), 2);
        assert!(statements.prepare("NOT SQL").is_err());
    }
}
