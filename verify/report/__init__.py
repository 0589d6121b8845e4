"""What a run reports: the text table, JSON, JUnit XML, SARIF, the terminal display, the exit-code gate."""
