//! The schema, as an append-only list of migrations tracked in `PRAGMA user_version`.
//! Never edit or remove an entry once released: add a new one. So a rebuilt table repeats
//! its old columns on purpose (5 rebuilds 3's `invoices`): each entry is what ran.

pub const MIGRATIONS: &[&str] = &[
    // 1: BitPay API tokens, one per environment and facade.
    "CREATE TABLE tokens (
        environment TEXT NOT NULL,
        facade TEXT NOT NULL,
        token TEXT NOT NULL,
        approved INTEGER NOT NULL,
        pairing_code TEXT,
        pairing_expires_at INTEGER,
        label TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (environment, facade)
    );",
    // 2: the last Splynx API nonce used per key, shared by every process.
    "CREATE TABLE splynx_nonce (
        api_key TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    );",
    // 3: BitPay invoices we created (or adopted), and the journal of everything that
    //    happened to them.
    "CREATE TABLE invoices (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        bitpay_id TEXT UNIQUE,
        environment TEXT NOT NULL,
        facade TEXT NOT NULL,
        token TEXT NOT NULL,
        doc_kind TEXT NOT NULL CHECK (doc_kind IN ('invoice', 'proforma', 'refill')),
        doc_id INTEGER,
        doc_number TEXT,
        customer_id INTEGER NOT NULL,
        price TEXT NOT NULL,
        currency TEXT NOT NULL,
        order_id TEXT NOT NULL UNIQUE,
        url TEXT,
        bitpay_status TEXT NOT NULL,
        exception_status TEXT,
        settlement TEXT NOT NULL CHECK (settlement IN
            ('creating', 'open', 'crediting', 'credited', 'expired', 'review')),
        note TEXT,
        expires_at INTEGER,
        splynx_payment_id INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX invoices_document ON invoices (doc_kind, doc_id, customer_id);
    CREATE INDEX invoices_settlement ON invoices (settlement);
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        bitpay_id TEXT,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX journal_invoice ON journal (bitpay_id, id);
    CREATE INDEX journal_kind ON journal (kind, at);",
    // 4: the Splynx API access token every process shares (renewed before it expires).
    "CREATE TABLE splynx_token (
        api_key TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 5: exactly once when Splynx is slow, and after the credit. New settlement states
    //    ('sent': a payment POST whose outcome is unknown; 'reversed': invalid, declined or
    //    refunded after the credit; 'resolved': the admin closed a held record), when the
    //    payment was last sent and how often, the watch over credited invoices until BitPay
    //    says complete, duplicate payment ids, and the findings `reconcile` mails once.
    //    SQLite cannot change a CHECK constraint, so the table is rebuilt.
    "CREATE TABLE invoices_v5 (
        id INTEGER PRIMARY KEY,
        guid TEXT NOT NULL UNIQUE,
        bitpay_id TEXT UNIQUE,
        environment TEXT NOT NULL,
        facade TEXT NOT NULL,
        token TEXT NOT NULL,
        doc_kind TEXT NOT NULL CHECK (doc_kind IN ('invoice', 'proforma', 'refill')),
        doc_id INTEGER,
        doc_number TEXT,
        customer_id INTEGER NOT NULL,
        price TEXT NOT NULL,
        currency TEXT NOT NULL,
        order_id TEXT NOT NULL UNIQUE,
        url TEXT,
        bitpay_status TEXT NOT NULL,
        exception_status TEXT,
        settlement TEXT NOT NULL CHECK (settlement IN
            ('creating', 'open', 'crediting', 'sent', 'credited', 'expired', 'review',
             'reversed', 'resolved')),
        note TEXT,
        expires_at INTEGER,
        splynx_payment_id INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        payment_sent_at INTEGER,
        payment_attempts INTEGER NOT NULL DEFAULT 0,
        credited_at INTEGER,
        watch_until INTEGER,
        duplicate_payment_ids TEXT
    );
    INSERT INTO invoices_v5 (id, guid, bitpay_id, environment, facade, token, doc_kind, doc_id,
        doc_number, customer_id, price, currency, order_id, url, bitpay_status,
        exception_status, settlement, note, expires_at, splynx_payment_id, created_at,
        updated_at, credited_at, watch_until)
    SELECT id, guid, bitpay_id, environment, facade, token, doc_kind, doc_id, doc_number,
        customer_id, price, currency, order_id, url, bitpay_status, exception_status,
        settlement, note, expires_at, splynx_payment_id, created_at, updated_at,
        CASE settlement WHEN 'credited' THEN updated_at END,
        CASE WHEN settlement = 'credited' AND bitpay_status != 'complete'
             THEN updated_at + 7 * 86400000 END
    FROM invoices;
    DROP TABLE invoices;
    ALTER TABLE invoices_v5 RENAME TO invoices;
    CREATE INDEX invoices_document ON invoices (doc_kind, doc_id, customer_id);
    CREATE INDEX invoices_settlement ON invoices (settlement);
    CREATE INDEX invoices_watch ON invoices (watch_until) WHERE watch_until IS NOT NULL;
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        bitpay_id TEXT,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 6: token values that older versions wrote into journal text (HTTP errors that named
    //    the request URL, `?token=...`) are replaced by "(redacted)". Done in Rust right
    //    after this step (`scrub_journal_secrets`): SQL cannot rewrite every `token=` value.
    "SELECT 1;",
    // 7: the public webhook URL's costs stay ours to bound: what BitPay said about an
    //    invoice id we do not hold (asked at most once per id per window), and when each
    //    invoice was last fetched (an exact duplicate webhook seconds later is answered
    //    from that).
    "CREATE TABLE unknown_lookups (
        bitpay_id TEXT PRIMARY KEY,
        at INTEGER NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE INDEX unknown_lookups_at ON unknown_lookups (at);
    ALTER TABLE invoices ADD COLUMN fetched_at INTEGER;
    CREATE INDEX journal_kind_id ON journal (kind, id);",
    // 8: invoice counts by state kept by triggers: `status` and the admin page read a few
    //    rows instead of counting a year of invoices on every view.
    "CREATE TABLE settlement_counts (
        settlement TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    );
    INSERT INTO settlement_counts (settlement, n)
        SELECT settlement, count(*) FROM invoices GROUP BY settlement;
    CREATE TRIGGER settlement_count_insert AFTER INSERT ON invoices BEGIN
        INSERT INTO settlement_counts (settlement, n) VALUES (new.settlement, 1)
            ON CONFLICT (settlement) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER settlement_count_update AFTER UPDATE OF settlement ON invoices
        WHEN old.settlement IS NOT new.settlement BEGIN
        UPDATE settlement_counts SET n = n - 1 WHERE settlement = old.settlement;
        INSERT INTO settlement_counts (settlement, n) VALUES (new.settlement, 1)
            ON CONFLICT (settlement) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER settlement_count_delete AFTER DELETE ON invoices BEGIN
        UPDATE settlement_counts SET n = n - 1 WHERE settlement = old.settlement;
    END;",
    // 9: the customer's Splynx partner, whose Modules-list settings (payment method) the
    //    payment is made with. NULL for invoices from before, and for adopted ones whose
    //    customer Splynx could not name: the main settings apply.
    "ALTER TABLE invoices ADD COLUMN partner_id INTEGER;",
    // 10: the admin page's recent payments, newest credit first, without sorting a year of
    //     credited invoices on every view.
    "CREATE INDEX invoices_credited ON invoices (credited_at) WHERE credited_at IS NOT NULL;",
    // 11: what is booked in Splynx after a credit (the payment statement record), exactly
    //     once like the payment: added with the credit, marked sent before each POST, done
    //     with the Splynx id; open ones are retried by reconcile from `next_try_at`. And
    //     the Splynx id of each payment statement by title, so a statement is looked up
    //     once, not per payment.
    "CREATE TABLE bookings (
        invoice_id INTEGER NOT NULL REFERENCES invoices (id),
        kind TEXT NOT NULL CHECK (kind IN ('statement', 'fee')),
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'done')),
        splynx_id INTEGER,
        sent_at INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_at INTEGER NOT NULL,
        note TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (invoice_id, kind)
    );
    CREATE INDEX bookings_open ON bookings (next_try_at) WHERE state != 'done';
    CREATE TABLE statements (
        title TEXT PRIMARY KEY,
        splynx_id INTEGER NOT NULL
    );",
    // 12: the service fee charged on top, as the customer saw it before paying (exact
    //     decimals as text; NULL: no fee). Its transaction is a booking of kind 'fee'.
    "ALTER TABLE invoices ADD COLUMN fee_percent TEXT;
    ALTER TABLE invoices ADD COLUMN fee TEXT;
    ALTER TABLE invoices ADD COLUMN fee_vat_percent TEXT;
    ALTER TABLE invoices ADD COLUMN fee_vat TEXT;",
    // 13: "reported" is a property of the finding, not an id watermark: `findings.id` has
    //     no AUTOINCREMENT, so SQLite hands a pruned finding's id to the next one, which a
    //     watermark then skipped. The findings up to the old watermark are reported.
    "ALTER TABLE findings ADD COLUMN reported_at INTEGER;
    UPDATE findings SET reported_at = at
        WHERE id <= coalesce((SELECT CAST(value AS INTEGER) FROM meta
                              WHERE key = 'reconcile.reported_finding'), 0);
    DELETE FROM meta WHERE key = 'reconcile.reported_finding';
    CREATE INDEX findings_unreported ON findings (id) WHERE reported_at IS NULL;",
    // 14: what a checkout decided, so that settlement never depends on today's settings:
    //     where the checkout started ('portal' or 'link': only the same origin may be
    //     handed the invoice again) and the settlement terms (payment method, when to
    //     credit, statement grouping, the fee's category and text). NULL for invoices
    //     from before: today's settings of the customer's partner apply to those.
    "ALTER TABLE invoices ADD COLUMN origin TEXT CHECK (origin IN ('portal', 'link'));
    ALTER TABLE invoices ADD COLUMN payment_method_id INTEGER;
    ALTER TABLE invoices ADD COLUMN credit_on TEXT;
    ALTER TABLE invoices ADD COLUMN statements TEXT;
    ALTER TABLE invoices ADD COLUMN fee_category INTEGER;
    ALTER TABLE invoices ADD COLUMN fee_message TEXT;",
    // 15: a payment statement POST whose outcome is unknown (Splynx may commit it after we
    //     gave up waiting): when it was sent, so that later runs only look the title up
    //     during the grace period instead of creating a second statement for the month.
    "CREATE TABLE statement_creates (
        title TEXT PRIMARY KEY,
        sent_at INTEGER NOT NULL
    );",
    // 16: the payment server's status, normalised (`server::InvoiceStatus`), beside its own
    //     words (`bitpay_status`, `exception_status`): decisions read the first, people the
    //     second. Rows from before are BitPay's: BitPay's statuses as of this migration.
    "ALTER TABLE invoices ADD COLUMN status TEXT NOT NULL DEFAULT 'unknown';
    UPDATE invoices SET status = CASE bitpay_status
        WHEN 'new' THEN 'open'
        WHEN 'paid' THEN 'paid-unconfirmed'
        WHEN 'confirmed' THEN 'paid-confirmed'
        WHEN 'complete' THEN 'final'
        WHEN 'expired' THEN
            CASE WHEN exception_status = 'paidLate' THEN 'expired-paid-late' ELSE 'expired' END
        WHEN 'invalid' THEN 'invalid'
        WHEN 'declined' THEN 'reversed'
        ELSE 'unknown' END;",
    // 17: refunds asked for from Splynx. A row is written before anything is sent to the
    //     payment server (`guid`: the request's own key, BitPay's idempotency key), learns
    //     the server's id when it answers, follows its states, and is booked in Splynx as
    //     a negative payment once, after the money was paid out (`booking_sent_at` before
    //     the POST, `splynx_payment_id` after).
    "CREATE TABLE refunds (
        id INTEGER PRIMARY KEY,
        invoice_id INTEGER NOT NULL REFERENCES invoices(id),
        guid TEXT NOT NULL UNIQUE,
        server_id TEXT UNIQUE,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        reason TEXT,
        state TEXT NOT NULL CHECK (state IN ('sending', 'requested', 'pending', 'paid-out', 'failed', 'cancelled')),
        server_status TEXT,
        claim_link TEXT,
        requested_by TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        note TEXT,
        booking_sent_at INTEGER,
        splynx_payment_id INTEGER
    );
    CREATE INDEX refunds_invoice ON refunds (invoice_id);
    CREATE INDEX refunds_state ON refunds (state);",
];

/// The migration after which the journal is scrubbed of secrets.
pub(super) const SCRUB_MIGRATION: usize = 6;
