"""Research tools: a two-leg pair backtester without look-ahead, walk-forward parameter search and
universe screening. Pure code (no I/O besides the explicit loaders in ``prices``), so the gateway can
serve it as well as the ``pairs backtest`` / ``pairs screen`` commands.
"""
