"""Reports rendered from results: JUnit XML, pcaps, and (see the modules) HTML and Markdown."""
