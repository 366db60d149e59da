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
use std::sync::Mutex;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Error, NoTls, Row, Statement};

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
