"""The command-line adapter: parse, call the engine, render. No rules live here."""
