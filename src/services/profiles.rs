//! Member profiles: the fields colleagues see, and the photo behind them.
