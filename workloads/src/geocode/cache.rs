//! `geocode_cache`: addresses by rounded point. Read in one query before the
//! geocoding phase, written in the job's single write transaction after it.
//! "No address here" is stored as the empty string.

use super::CacheKey;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};

fn columns(keys: impl Iterator<Item = CacheKey>) -> (Vec<i32>, Vec<i32>) {
    keys.map(|k| (k.lat_e5, k.lng_e5)).unzip()
}

/// The cached answers among `keys`.
pub async fn lookup(
    conn: &mut PgConnection,
    keys: &[CacheKey],
) -> Result<HashMap<CacheKey, Option<String>>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (lat, lng) = columns(keys.iter().copied());
    let rows: Vec<(i32, i32, String)> = sqlx::query_as(
        "SELECT c.lat_e5, c.lng_e5, c.address
         FROM geocode_cache c
         JOIN unnest($1::int4[], $2::int4[]) AS k(lat_e5, lng_e5) USING (lat_e5, lng_e5)",
    )
    .bind(lat)
    .bind(lng)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(lat_e5, lng_e5, address)| {
            let address = (!address.is_empty()).then_some(address);
            (CacheKey { lat_e5, lng_e5 }, address)
        })
        .collect())
}

/// Stores new answers (a key cached meanwhile by another run is kept as it
/// is). Returns the rows inserted.
pub async fn store(
    conn: &mut PgConnection,
    answers: &BTreeMap<CacheKey, Option<String>>,
) -> Result<u64, sqlx::Error> {
    if answers.is_empty() {
        return Ok(0);
    }
    let (lat, lng) = columns(answers.keys().copied());
    let address: Vec<String> = answers
        .values()
        .map(|a| a.clone().unwrap_or_default())
        .collect();
    Ok(sqlx::query(
        "INSERT INTO geocode_cache (lat_e5, lng_e5, address)
         SELECT * FROM unnest($1::int4[], $2::int4[], $3::text[])
         ON CONFLICT (lat_e5, lng_e5) DO NOTHING",
    )
    .bind(lat)
    .bind(lng)
    .bind(address)
    .execute(conn)
    .await?
    .rows_affected())
}
