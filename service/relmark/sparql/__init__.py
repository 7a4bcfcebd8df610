"""Reading SPARQL text before an engine does: one lexer (``lexer``), what a text says
about itself (``inspect``), rewrites for parameters, graphs and older engines
(``rewrite``), and the checks that refuse a text before it is parsed (``guard``)."""
