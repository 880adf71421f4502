import json
from support.signing import RawClient, RawRequest, Signer
def test_dbg(server, unique_name):
    n = unique_name()
    with RawClient(server.endpoint, Signer(server.credentials)) as raw:
        for op, p in [
            ("CreateSecret", {"Name": n, "Description": "a\x00b", "ClientRequestToken": "a"*32}),
            ("CreateSecret", {"Name": n+"t", "Tags": [{"Key": "k\x00", "Value": "v\x00"}], "ClientRequestToken": "b"*32}),
            ("CreateSecret", {"Name": n+"s", "SecretString": "v\x00", "ClientRequestToken": "c"*32}),
            ("CreateSecret", {"Name": n+"k", "KmsKeyId": "k\x00", "ClientRequestToken": "d"*32}),
            ("CreateSecret", {"Name": n+"y", "Type": "t\x00", "ClientRequestToken": "e"*32}),
            ("CreateSecret", {"Name": n+"z", "ClientRequestToken": "\x00"*32}),
            ("CreateSecret", {"Name": n+"\ud800", "ClientRequestToken": "f"*32}),
            ("PutSecretValue", {"SecretId": n+"s", "SecretString": "x", "ClientRequestToken": "g"*31 + "\x00"}),
            ("PutSecretValue", {"SecretId": n+"s", "SecretString": "x", "ClientRequestToken": "g"*32, "VersionStages": ["a\x00"]}),
            ("UpdateSecretVersionStage", {"SecretId": n+"s", "VersionStage": "AWS\x00", "MoveToVersionId": "c"*32}),
            ("GetSecretValue", {"SecretId": n+"s", "VersionId": "\x00"*32}),
            ("GetSecretValue", {"SecretId": n+"s", "VersionStage": "\x00"}),
            ("ListSecrets", {"Filters": [{"Key": "name", "Values": ["\x00"]}]}),
            ("ListSecrets", {"Filters": [{"Key": "description", "Values": ["a"]}], "NextToken": "\x00"}),
            ("UntagResource", {"SecretId": n+"t", "TagKeys": ["\x00"]}),
            ("PutResourcePolicy", {"SecretId": n+"s", "ResourcePolicy": json.dumps({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"\x00","Action":"*","Resource":"*"}]})}),
            ("PutResourcePolicy", {"SecretId": n+"s", "ResourcePolicy": "{\"a\":\"\\u0000\"}"}),
            ("GetRandomPassword", {"ExcludeCharacters": "\x00"}),
            ("DescribeSecret", {"SecretId": "arn:aws:secretsmanager:us-east-1:000000000000:secret:\x00"}),
            ("BatchGetSecretValue", {"SecretIdList": ["x\x00"]}),
            ("UpdateSecret", {"SecretId": n+"s", "Description": "\x00", "KmsKeyId": "alias/\x00"}),
        ]:
            r = raw.send(RawRequest.for_operation(op, p))
            print(op, r.status_code, r.content[:200])
