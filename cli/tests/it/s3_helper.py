"""Test helper for cli/tests/it/s3.rs: talks to the moto S3 server the test started.

  s3_helper.py mkbucket ENDPOINT BUCKET
  s3_helper.py keys ENDPOINT BUCKET PREFIX          (one key per line)
  s3_helper.py put ENDPOINT BUCKET KEY TEXT
  s3_helper.py upload ENDPOINT LOCAL_DIR BUCKET PREFIX  (every file, hidden ones included)
  s3_helper.py write-external ENDPOINT BUCKET PREFIX (pyarrow, Hive layout, dir markers)
  s3_helper.py write-partition ENDPOINT BUCKET PREFIX DT  (one more partition, one row)
  s3_helper.py auth-setup ENDPOINT BUCKET            (moto with auth: prints key id and secret)
"""

import sys

import boto3

KW = dict(region_name="us-east-1")


def client(endpoint, key="test", secret="test", service="s3"):
    return boto3.client(
        service, endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret, **KW
    )


def main():
    cmd, endpoint = sys.argv[1], sys.argv[2]
    if cmd == "mkbucket":
        client(endpoint).create_bucket(Bucket=sys.argv[3])
    elif cmd == "keys":
        s3 = client(endpoint)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[3], Prefix=sys.argv[4])
        for page in pages:
            for o in page.get("Contents", []):
                print(o["Key"])
    elif cmd == "put":
        client(endpoint).put_object(Bucket=sys.argv[3], Key=sys.argv[4], Body=sys.argv[5].encode())
    elif cmd == "upload":
        import os

        local, bucket, prefix = sys.argv[3], sys.argv[4], sys.argv[5]
        s3 = client(endpoint)
        for root, _, files in os.walk(local):
            for f in files:
                path = os.path.join(root, f)
                key = prefix + "/" + os.path.relpath(path, local)
                s3.upload_file(path, bucket, key)
    elif cmd == "write-external":
        write_external(endpoint, sys.argv[3], sys.argv[4])
    elif cmd == "write-partition":
        write_external(endpoint, sys.argv[3], sys.argv[4], only=sys.argv[5])
    elif cmd == "auth-setup":
        iam = client(endpoint, "x", "x", "iam")
        iam.create_user(UserName="cuve")
        k = iam.create_access_key(UserName="cuve")["AccessKey"]
        iam.put_user_policy(
            UserName="cuve",
            PolicyName="s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}',
        )
        client(endpoint, k["AccessKeyId"], k["SecretAccessKey"]).create_bucket(Bucket=sys.argv[3])
        print(k["AccessKeyId"])
        print(k["SecretAccessKey"])
    else:
        raise SystemExit(f"unknown command {cmd}")


def write_external(endpoint, bucket, prefix, only=None):
    """Two partitions of events written by pyarrow (not Cuve), as Spark and Hive lay them out,
    with the zero-byte "directory" objects and _SUCCESS markers those tools leave."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
    )
    s3 = client(endpoint)
    rows = {
        "2024-01-01": (["u1", "사용자", "it's"], [1, 2, 3]),
        "2024-01-02": (["u1", "back\\slash"], [10, 20]),
    }
    if only is not None:
        rows = {only: (["late"], [100])}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/", Body=b"")
    for dt, (users, n) in rows.items():
        table = pa.table({"user_id": users, "n": pa.array(n, pa.int64())})
        s3.put_object(Bucket=bucket, Key=f"{prefix}/dt={dt}/", Body=b"")
        pq.write_table(table, f"{bucket}/{prefix}/dt={dt}/part-00000.parquet", filesystem=fs)
        s3.put_object(Bucket=bucket, Key=f"{prefix}/dt={dt}/_SUCCESS", Body=b"")


if __name__ == "__main__":
    main()
