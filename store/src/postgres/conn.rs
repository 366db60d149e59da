//! A connection that keeps the statements it has prepared and pipelines
//! what is sent on it.
//!
//! A statement given as text costs two round trips (parse, then bind and
//! execute); a prepared one costs one, and a push runs the same few
//! statements on every request. Requests that are in flight together
//! (joined futures, or concurrent callers sharing the connection) go out
//! together and are answered in order: several statements cost one round
//! trip, which is what keeps the write lock's transaction short.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Error, NoTls, Row, Statement};

use super::unavailable;
use crate::error::StoreError;

/// One open connection and its prepared statements, by their text.
pub(crate) struct Conn {
    client: Client,
    prepared: Mutex<HashMap<&'static str, Statement>>,
}

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    /// Opens a connection whose protocol work runs as a task of the
    /// current runtime: it makes progress while that runtime runs.
    pub(crate) async fn open(config: &Config) -> Result<Self, Error> {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(Self {
            client,
            prepared: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client, for statements prepared beforehand and pipelined: a
    /// statement still to prepare would go out after those behind it.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn statement(&self, sql: &'static str) -> Result<Statement, Error> {
        let known = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, Error> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await
    }

    pub(crate) async fn query_one(
        &self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Row, Error> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, params).await
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await
    }

    /// Statements sent as one text, without parameters: one message, run
    /// whole before anything pipelined after it.
    pub(crate) async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql).await
    }
}

/// One connection, opened on first use and again after it breaks. Every
/// request of a node shares the upload sessions' ones: what concurrent
/// requests send on it is pipelined, and a statement costs its round trip
/// and no thread.
pub(crate) struct Pipe {
    config: Config,
    open: Mutex<Option<Arc<Conn>>>,
}

impl Pipe {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            open: Mutex::new(None),
        }
    }

    fn opened(&self) -> std::sync::MutexGuard<'_, Option<Arc<Conn>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection open now, if any: for what only makes sense on it
    /// (ending its transaction).
    pub(crate) fn current(&self) -> Option<Arc<Conn>> {
        self.opened().clone()
    }

    /// Drops the connection: the next use opens a new one.
    pub(crate) fn forget(&self) {
        *self.opened() = None;
    }

    pub(crate) async fn conn(&self) -> Result<Arc<Conn>, StoreError> {
        if let Some(open) = self.opened().as_ref().filter(|c| !c.is_closed()) {
            return Ok(open.clone());
        }
        let conn = Arc::new(
            Conn::open(&self.config)
                .await
                .map_err(|e| unavailable(&e))?,
        );
        *self.opened() = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the connection. A connection is only found broken (the
    /// server restarted while it idled) when it is used: `f` is then run
    /// once more on a new one.
    pub(crate) async fn with<T, F: Future<Output = Result<T, Error>>>(
        &self,
        f: impl Fn(Arc<Conn>) -> F,
    ) -> Result<T, StoreError> {
        let conn = self.conn().await?;
        match f(conn.clone()).await {
            Err(_) if conn.is_closed() => f(self.conn().await?).await,
            done => done,
        }
        .map_err(|e| unavailable(&e))
    }
}
