//! The IMEIs a per-device job asks about: the account's device list, as
//! the API gives it now (the `devices` table may be stale or not filled yet).

use super::error::JobError;
use crate::tracksolid::{TokenStore, TracksolidClient};
use std::collections::BTreeSet;

/// The account's IMEIs, trimmed, without blanks and duplicates, sorted.
pub async fn of_account<S: TokenStore>(
    client: &TracksolidClient<S>,
) -> Result<Vec<String>, JobError> {
    let devices = client.device_list().await?;
    Ok(clean(devices.iter().map(|d| d.imei.as_str())))
}

pub fn clean<'a>(imeis: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    imeis
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn blanks_and_duplicates_go() {
        assert_eq!(super::clean(["2", " 1 ", "", "2"]), vec!["1", "2"]);
    }
}
