//! The schema, as an append-only list of migrations tracked in `PRAGMA user_version`.
//! Never edit or remove an entry once released: add a new one.

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
];
