"""The Python Elasticsearch client's helpers.bulk against `cuve serve --http`
(cli/tests/it/intake.rs starts the server and checks the stored rows).

Env: CUVE_ES_URL, CUVE_USER, CUVE_SECRET (WRITE on the table), CUVE_READER_SECRET (no grants),
CUVE_FILE (a JSON-lines log file)."""

import os
import sys

from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ApiError, AuthenticationException

URL = os.environ["CUVE_ES_URL"]
INDEX = "korea_naver_log.stream_log"
path = os.environ["CUVE_FILE"]
with open(path, encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip()]


def actions(part):
    name = os.path.basename(path)
    for i, line in part:
        yield {"_op_type": "index", "_index": INDEX, "_id": f"{name}:{i}", "_source": line}


es = Elasticsearch(URL, basic_auth=(os.environ["CUVE_USER"], os.environ["CUVE_SECRET"]))
info = es.info()
assert info["version"]["number"].startswith("8."), info

numbered = list(enumerate(lines, start=1))
half = len(numbered) // 2
ok, errors = helpers.bulk(es, actions(numbered[:half]), chunk_size=100)
assert ok == half and not errors, (ok, errors)
# A retry of everything (a shipper that did not see the answers): the first half is a no-op.
ok, errors = helpers.bulk(es, actions(numbered), chunk_size=150)
assert ok == len(numbered) and not errors, (ok, errors)

raw = es.bulk(operations=[{"index": {"_index": INDEX, "_id": "x:1"}}, "{\"log_time\": \"bad\"}"])
assert raw["errors"] is True, raw
item = raw["items"][0]["index"]
assert item["status"] == 400 and "log_time" in item["error"]["reason"], item

raw = es.bulk(operations=[{"delete": {"_index": INDEX, "_id": "x:1"}}])
assert raw["items"][0]["delete"]["status"] == 400, raw

# A ticket with no grants gets 403 per item; a wrong secret 401.
reader = Elasticsearch(URL, api_key=os.environ["CUVE_READER_SECRET"])
raw = reader.bulk(operations=[{"index": {"_index": INDEX, "_id": "r:1"}}, lines[0]])
assert raw["items"][0]["index"]["status"] == 403, raw
try:
    Elasticsearch(URL, basic_auth=("kim", "cuve_wrong.secret")).bulk(
        operations=[{"index": {"_index": INDEX}}, lines[0]]
    )
    sys.exit("a wrong secret was accepted")
except AuthenticationException:
    pass
except ApiError as e:
    assert e.meta.status == 401, e

print(f"bulk ok: {len(numbered)} documents")
