"""Every component id of the dashboard, in one place (callbacks and tests refer to these names)."""

# --- app-wide ---------------------------------------------------------------------------
TZ_OFFSET = "tz-offset"  # store: browser minutes east of UTC (for local time on hover)
GATEWAY_STATUS = "gateway-status"  # banner: gateway reachable / down
STATUS_TICK = "status-tick"  # interval driving the banner
NAV = "nav"
URL = "url"

# --- live pair view ---------------------------------------------------------------------
LIVE_PAIR = "live-pair"
LIVE_TIMEFRAME = "live-timeframe"
LIVE_ENTRY = "live-entry"
LIVE_EXIT = "live-exit"
LIVE_TICK = "live-tick"
LIVE_WANTED = "live-wanted"  # store: pair / timeframe asked for in the URL query
LIVE_STATE = "live-state"  # store: cursor (last seq / bar times) of what is drawn
LIVE_PRICE_GRAPH = "live-price-graph"
LIVE_SPREAD_GRAPH = "live-spread-graph"
LIVE_HEDGE_GRAPH = "live-hedge-graph"
LIVE_CARDS = "live-cards"
LIVE_MESSAGE = "live-message"
LIVE_SNAPSHOT = "live-snapshot"  # table: every pair's latest z / signal

# --- method comparison ------------------------------------------------------------------
METHODS_PAIR = "methods-pair"
METHODS_TIMEFRAME = "methods-timeframe"
METHODS_BARS = "methods-bars"
METHODS_WINDOW = "methods-window"
METHODS_RUN = "methods-run"
METHODS_GRAPH = "methods-graph"
METHODS_TABLE = "methods-table"  # one row per method
METHODS_REPORT = "methods-report"  # the whole report, flattened
METHODS_MESSAGE = "methods-message"

# --- universe ---------------------------------------------------------------------------
UNIVERSE_INSTRUMENTS = "universe-instruments"
UNIVERSE_TIMEFRAME = "universe-timeframe"
UNIVERSE_BARS = "universe-bars"
UNIVERSE_RUN = "universe-run"
UNIVERSE_CORR_GRAPH = "universe-corr-graph"
UNIVERSE_COINT_GRAPH = "universe-coint-graph"
UNIVERSE_TABLE = "universe-table"
UNIVERSE_LEADLAG_GRAPH = "universe-leadlag-graph"
UNIVERSE_MESSAGE = "universe-message"

# --- alerts -----------------------------------------------------------------------------
ALERT_RULE_ID = "alert-rule-id"  # store: id of the rule being edited (None = new rule)
ALERT_NAME = "alert-name"
ALERT_PAIR = "alert-pair"
ALERT_TIMEFRAME = "alert-timeframe"
ALERT_KIND = "alert-kind"
ALERT_CONDITION = "alert-condition"
ALERT_CLEAR = "alert-clear"
ALERT_ENTRY = "alert-entry"
ALERT_EXIT = "alert-exit"
ALERT_STOP = "alert-stop"
ALERT_COOLDOWN = "alert-cooldown"
ALERT_ENABLED = "alert-enabled"
ALERT_SAVE = "alert-save"
ALERT_NEW = "alert-new"
ALERT_FORM_MESSAGE = "alert-form-message"
ALERT_RULES_TABLE = "alert-rules-table"
ALERT_EDIT = "alert-edit"
ALERT_TOGGLE = "alert-toggle"
ALERT_DELETE = "alert-delete"
ALERT_REFRESH = "alert-refresh"  # store bumped after every write so the table reloads
ALERT_FEED = "alert-feed"
ALERT_FEED_TICK = "alert-feed-tick"
ALERT_HISTORY_PAIR = "alert-history-pair"
ALERT_HISTORY_KIND = "alert-history-kind"
ALERT_HISTORY_RULE = "alert-history-rule"
ALERT_HISTORY_TABLE = "alert-history-table"

# --- backtest ---------------------------------------------------------------------------
BT_PAIR = "bt-pair"
BT_TIMEFRAME = "bt-timeframe"
BT_BARS = "bt-bars"
BT_WINDOW = "bt-window"
BT_ENTRY = "bt-entry"
BT_EXIT = "bt-exit"
BT_STOP = "bt-stop"
BT_METHOD = "bt-method"
BT_FEE = "bt-fee"
BT_SLIPPAGE = "bt-slippage"
BT_RUN = "bt-run"
BT_GRAPH = "bt-graph"
BT_STATS = "bt-stats"
BT_TRADES = "bt-trades"
BT_MESSAGE = "bt-message"

# --- data -------------------------------------------------------------------------------
DATA_PAIR = "data-pair"
DATA_TIMEFRAME = "data-timeframe"
DATA_EXPORT_KIND = "data-export-kind"
DATA_EXPORT = "data-export"
DATA_DOWNLOAD = "data-download"
DATA_EXPORT_MESSAGE = "data-export-message"
DATA_UPLOAD_KIND = "data-upload-kind"
DATA_UPLOAD_SYMBOL = "data-upload-symbol"
DATA_UPLOAD = "data-upload"
DATA_UPLOAD_REPORT = "data-upload-report"

# --- system -----------------------------------------------------------------------------
SYSTEM_TICK = "system-tick"
SYSTEM_FEEDS = "system-feeds"
SYSTEM_WORKERS = "system-workers"
SYSTEM_LEASES = "system-leases"
SYSTEM_LAG_GRAPH = "system-lag-graph"
SYSTEM_DEADLETTERS = "system-deadletters"
SYSTEM_RATES = "system-rates"
SYSTEM_MESSAGE = "system-message"
