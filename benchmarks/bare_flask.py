"""The floor under relmark: Flask + waitress + pyoxigraph and nothing else.

    python benchmarks/bare_flask.py --store DIR [--load FILE.nt] --port 8001

GET /sparql?query=… runs the query on an on-disk pyoxigraph store with the union of all
graphs as default graph (as relmark does) and answers SPARQL JSON. --load bulk-loads an
N-Triples file into a named graph first (as `relmark load` does).
"""

import argparse

import pyoxigraph as ox
from flask import Flask, Response, request
from waitress import serve

ap = argparse.ArgumentParser()
ap.add_argument("--store", required=True)
ap.add_argument("--load")
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--threads", type=int, default=4)  # waitress's default
args = ap.parse_args()

store = ox.Store(args.store)
if args.load:
    store.bulk_load(path=args.load, to_graph=ox.NamedNode("urn:relmark:data:bench"))
app = Flask(__name__)


@app.get("/sparql")
def sparql():
    try:
        result = store.query(request.args["query"], use_default_graph_as_union=True)
    except (KeyError, SyntaxError) as e:
        return Response(str(e), 400, mimetype="text/plain")
    if isinstance(result, ox.QueryTriples):
        return Response(
            result.serialize(format=ox.RdfFormat.N_TRIPLES), mimetype="application/n-triples"
        )
    body = result.serialize(format=ox.QueryResultsFormat.JSON)
    return Response(body, mimetype="application/sparql-results+json")


serve(app, host=args.host, port=args.port, threads=args.threads)
