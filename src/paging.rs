//! Reading a server's paged listing: the first page alone, then several requests in flight
//! at once, every item handed on in the listing's order.

use crate::server::ServerResult;

/// Requests of a listing in flight at once after its first page.
pub const PAGES_AT_ONCE: usize = 4;

/// Reads a listing page by page: `fetch(offset)` answers the `page` items from `offset`.
/// The first page is read alone (most listings fit in it); after a full one, workers keep
/// `PAGES_AT_ONCE` requests in flight (one request per page, but not one latency each,
/// and each page decoded while others travel) until a short page. Every item goes to
/// `each` in the listing's order.
pub fn read_pages<T: Send>(
    page: usize,
    fetch: impl Fn(usize) -> ServerResult<Vec<T>> + Sync,
    each: &mut dyn FnMut(T),
) -> ServerResult<()> {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let first = fetch(0)?;
    let full = first.len() == page;
    first.into_iter().for_each(&mut *each);
    if !full {
        return Ok(());
    }
    // Page numbers: the next one to ask for, and the last one there is (a short page,
    // or a failure, ends the listing there).
    let (next, last) = (AtomicUsize::new(1), AtomicUsize::new(usize::MAX));
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..PAGES_AT_ONCE {
            let (sent, next, last, fetch) = (sent.clone(), &next, &last, &fetch);
            scope.spawn(move || loop {
                let n = next.fetch_add(1, SeqCst);
                if n > last.load(SeqCst) {
                    return;
                }
                let items = fetch(n * page);
                if items.as_ref().map_or(true, |items| items.len() < page) {
                    last.fetch_min(n, SeqCst);
                }
                if sent.send((n, items)).is_err() {
                    return;
                }
            });
        }
        drop(sent);
        // Pages arrive in any order; they are handed on in theirs.
        let mut arrived = std::collections::BTreeMap::new();
        let (mut expected, mut outcome) = (1, None);
        for (n, items) in received {
            arrived.insert(n, items);
            while outcome.is_none() {
                let Some(items) = arrived.remove(&expected) else {
                    break;
                };
                match items {
                    Ok(items) => {
                        let short = items.len() < page;
                        items.into_iter().for_each(&mut *each);
                        if short {
                            outcome = Some(Ok(()));
                        }
                    }
                    Err(e) => {
                        last.fetch_min(expected, SeqCst);
                        outcome = Some(Err(e));
                    }
                }
                expected += 1;
            }
        }
        outcome.unwrap_or(Ok(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerError;

    /// Pages answered out of order (later pages first) still come out in order, once each,
    /// up to the short page; a failure ends the listing with that failure.
    #[test]
    fn pages_are_handed_on_in_order_until_a_short_one() {
        let items: Vec<usize> = (0..1050).collect();
        let fetch = |offset: usize| -> ServerResult<Vec<usize>> {
            std::thread::sleep(std::time::Duration::from_millis(
                (20 - (offset / 100) % 20) as u64,
            ));
            Ok(items.iter().copied().skip(offset).take(100).collect())
        };
        let mut seen = Vec::new();
        read_pages(100, fetch, &mut |i| seen.push(i)).unwrap();
        assert_eq!(seen, items);
        for total in [0, 99, 100, 200] {
            let mut seen = Vec::new();
            read_pages(
                100,
                |offset| Ok((offset..total).take(100).collect()),
                &mut |i| seen.push(i),
            )
            .unwrap();
            assert_eq!(seen, (0..total).collect::<Vec<_>>());
        }
        let failing = |offset: usize| -> ServerResult<Vec<usize>> {
            if offset == 500 {
                Err(ServerError::Temporary(anyhow::anyhow!("page 5 failed")))
            } else {
                Ok((offset..offset + 100).collect())
            }
        };
        let mut seen = Vec::new();
        let error = read_pages(100, failing, &mut |i| seen.push(i)).unwrap_err();
        assert!(error.is_temporary());
        assert_eq!(seen, (0..500).collect::<Vec<_>>(), "what came before it");
    }
}
