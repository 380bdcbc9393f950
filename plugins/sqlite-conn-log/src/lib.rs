//! Writes every connection into the `connections` table of the database granted as
//! `database` (default "connections"): a row on connect, `disconnect_time` set on disconnect,
//! so `SELECT COUNT(*) FROM connections WHERE disconnect_time IS NULL` counts live clients.

use waspmq_plugin_sdk::sql::{self, opt_text, text};
use waspmq_plugin_sdk::*;

struct SqliteConnLog {
    database: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT, username TEXT, ip_address TEXT,
    connect_time TIMESTAMP, disconnect_time TIMESTAMP)";

impl Plugin for SqliteConnLog {
    fn init(config: Config) -> Result<Self, String> {
        let database = config
            .string("database")?
            .unwrap_or_else(|| "connections".to_owned());
        sql::execute(&database, SCHEMA, &[]).map_err(|e| format!("cannot create table: {e:?}"))?;
        Ok(SqliteConnLog { database })
    }

    fn connected(&self, client: &ClientInfo) {
        let ip = client
            .peer
            .as_deref()
            .map(|p| p.rsplit_once(':').map_or(p, |(ip, _)| ip));
        let insert = "INSERT INTO connections (client_id, username, ip_address, connect_time)
                      VALUES (?1, ?2, ?3, datetime('now'))";
        let params = [
            text(&client.client_id),
            opt_text(client.username.as_deref()),
            opt_text(ip),
        ];
        if let Err(e) = sql::execute(&self.database, insert, &params) {
            log::error(&format!(
                "cannot log connection of {}: {e:?}",
                client.client_id
            ));
        }
    }

    fn disconnected(&self, client: &ClientInfo, _reason: &str) {
        let update = "UPDATE connections SET disconnect_time = datetime('now')
                      WHERE id = (SELECT MAX(id) FROM connections
                                  WHERE client_id = ?1 AND disconnect_time IS NULL)";
        if let Err(e) = sql::execute(&self.database, update, &[text(&client.client_id)]) {
            log::error(&format!(
                "cannot log disconnection of {}: {e:?}",
                client.client_id
            ));
        }
    }
}

export_plugin!(SqliteConnLog, hooks = [CONNECTED, DISCONNECTED]);
