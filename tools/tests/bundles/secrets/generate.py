import json, os, base64
# (id, secret text as planted, the substring that must never appear in output)
S = [
 ("aws-key-id", "AKIAZ7Q3K5V2PLM4XW8N", "AKIAZ7Q3K5V2PLM4XW8N"),
 ("aws-secret", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq9Lm3Xt7Q", "wJalrXUtnFEMI/K7MDENG"),
 ("github-pat", "ghp_9fK2mQ7xL4vB8nR3tW6yZ1cA5dE0hJ2uP7sX", "9fK2mQ7xL4vB8nR3tW6y"),
 ("github-fine", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV12345", "11ABCDEFG0123456789_abcdef"),
 ("github-oauth", "gho_Zx8Yw7Vu6Ts5Rr4Qp3Oo2Nn1Mm0Ll9Kk8Jj7Ii", "Zx8Yw7Vu6Ts5Rr4Qp3Oo2Nn1"),
 ("slack-bot", "xoxb-2648123456789-2648123456790-Zq8fKm3LpT9rXw2VbN7cYd4H", "Zq8fKm3LpT9rXw2VbN7cYd4H"),
 ("slack-user", "xoxp-1111222233334-5555666677778-9999000011112-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "a1b2c3d4e5f6a7b8c9d0"),
 ("slack-webhook", "https://hooks.slack.com/services/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", "q9Zx8Yw7Vu6Ts5Rr4Qp3Oo2N"),
 ("jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaGVja291dCIsImlhdCI6MTc4MjIxMjQwMH0.Yk3vT9nQm2LxW8pR5sZ1cA7dE4hJ0uB6fG", "Yk3vT9nQm2LxW8pR5sZ1cA7dE4hJ0uB6fG"),
 ("bearer", "Authorization: Bearer 8f3a9c2e7b1d4f6a0e5c9b2d7f1a3e6c", "8f3a9c2e7b1d4f6a0e5c9b2d7f1a3e6c"),
 ("gcp-api-key", "AIzaSyD3x9Qm7Lk2Vb8Nw4Rt6Yp1Zc5Hj0Uf3Ga", "SyD3x9Qm7Lk2Vb8Nw4Rt6Yp1Z"),
 ("gcp-oauth", "ya29.a0AfB_byC3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4z", "a0AfB_byC3dE4fG5hI6jK7"),
 ("gcp-sa-json", '{"type": "service_account", "private_key_id": "3f9a0c1b2d4e5f60718293a4b5c6d7e8f9012345", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7fakefakefake\\n-----END PRIVATE KEY-----\\n"}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7fake"),
 ("gcp-sa-key-id", "private_key_id: 3f9a0c1b2d4e5f60718293a4b5c6d7e8f9012345", "3f9a0c1b2d4e5f60718293a4b5c6d7e8f9012345"),
 ("rsa-pem-begin", "-----BEGIN RSA PRIVATE KEY----- MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0", "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgO"),
 ("pem-body-line", "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi7zLyTfLoKsYhXq7MxJd0vUfT3F6kQ", "3Tz2mr7SZiAMfQyuvBjM9Oi7zLyT"),
 ("openssh-key", "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"),
 ("azure-storage", "DefaultEndpointsProtocol=https;AccountName=shopassets;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A=;EndpointSuffix=core.windows.net", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"),
 ("azure-sas", "https://shopassets.blob.core.windows.net/img?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-07-01&sig=Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTEyMw%3D%3D", "Qm9ndXNTaWduYXR1cmVGb3JUZXN0"),
 ("azure-client-secret", "abc8Q~Zx9Yw8Vu7Ts6Rr5Qp4Oo3Nn2Mm1Ll0Kk9J", "Zx9Yw8Vu7Ts6Rr5Qp4Oo3Nn2"),
 ("azure-servicebus", "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=K8sFakeKeyForTestsOnly0123456789abcdefGHIJ=", "K8sFakeKeyForTestsOnly0123"),
 ("postgres-url", "postgres://checkout:pg-S3cr3t-2026@db.shop.svc:5432/orders", "pg-S3cr3t-2026"),
 ("mongodb-url", "mongodb+srv://admin:M0ng0Pa55w0rd@cluster0.ab12c.mongodb.net/shop", "M0ng0Pa55w0rd"),
 ("redis-url", "redis://:r3d1sP4ssw0rd@redis.shop.svc:6379/0", "r3d1sP4ssw0rd"),
 ("amqp-url", "amqp://guest:Rabb1tMQpass!@rabbitmq:5672/", "Rabb1tMQpass"),
 ("mysql-dsn", "checkout:My5qlP4ssw0rd@tcp(mysql.shop:3306)/shop?parseTime=true", "My5qlP4ssw0rd"),
 ("jdbc", "jdbc:sqlserver://sql.shop:1433;databaseName=orders;user=sa;password=SqlS3rv3r!2026", "SqlS3rv3r!2026"),
 ("adonet", "Server=tcp:shop.database.windows.net,1433;User ID=shopadmin;Password=Az5qlP@ssw0rd;Encrypt=True", "Az5qlP@ssw0rd"),
 ("password-kv", "login ok user=svc-checkout password=hunter2-prod-77", "hunter2-prod-77"),
 ("stripe", "sk_live_51HqLyjFAKEKEY0123456789abcdef", "51HqLyjFAKEKEY0123456789"),
 ("openai", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-7Fake", "Ab3dEf6hIj9kLm2nOp5qRs8t"),
 ("anthropic", "sk-ant-api03-FakeKeyForTests_0123456789abcdefghijklmnop", "FakeKeyForTests_0123456789"),
 ("huggingface", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "AbCdEfGhIjKlMnOpQrStUvWxYz0123"),
 ("npm", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_AbCdEfGhIjKlMnOp"),
 ("sendgrid", "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012", "wXyZ0123456789aBcDeFgHiJk"),
 ("twilio", "SK0123456789abcdef0123456789abcdef", "SK0123456789abcdef0123"),
 ("gitlab", "glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-AbCdEfGhIjKlMnOp"),
 ("basic-auth", "Authorization: Basic Y2hlY2tvdXQ6YmFzaWNQYXNzMTIz", "Y2hlY2tvdXQ6YmFzaWNQYXNzMTIz"),
 ("cookie", "Cookie: session=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
 ("docker-auth", '{"auths":{"ghcr.io":{"auth":"Y2hlY2tvdXQ6Z2hwX0Zha2VUb2tlbkZvclRlc3Rz"}}}', "Y2hlY2tvdXQ6Z2hwX0Zha2VU"),
 ("x-api-key", "x-api-key: 4f7d2c9a8b1e3f5a6c7d", "4f7d2c9a8b1e3f5a6c7d"),
 ("url-token", "https://api.shop.example/v1/hook?token=Zq81mXt7Kp3Lw", "Zq81mXt7Kp3Lw"),
 ("routing-key", "routing_key=R0UTINGKEY1234567890abcdef012345", "R0UTINGKEY1234567890"),
 ("vault", "hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOPQRSTUVWXYZab", "CAESIJ1a2b3c4d5e6f7g8h9i0j"),
 ("sentry", "https://0123456789abcdef0123456789abcdef@o123456.ingest.sentry.io/4504", "0123456789abcdef0123456789abcdef"),
 ("teams-webhook", "https://acme.webhook.office.com/webhookb2/1111-2222@3333-4444/IncomingWebhook/5f6e7d8c9b0a/9999", "IncomingWebhook/5f6e7d8c9b0a"),
]
assert len(S) >= 40, len(S)
json.dump([{"id": i, "planted": p, "must_not_appear": m} for i, p, m in S], open("corpus.json", "w"), indent=1)

os.makedirs("clusters/lab/objects", exist_ok=True)
os.makedirs("clusters/lab/logs/shop/checkout-5d8f7c9b6d-x7k2p", exist_ok=True)

ts = lambda s: f"2026-07-01T10:{s//60:02d}:{s%60:02d}.000000000Z"
lines = []
t = 0
for i, (sid, planted, _) in enumerate(S):
    t += 3
    lvl = "ERROR" if i % 3 == 0 else "INFO"
    lines.append(f"{ts(t)} {lvl} [checkout] config {sid}: {planted}")
    if sid == "rsa-pem-begin":
        t += 1; lines.append(f"{ts(t)} MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi7zLyTfLoKsYhXq7MxJd0vUfT3F6kQ")
        t += 1; lines.append(f"{ts(t)} -----END RSA PRIVATE KEY-----")
t += 1
lines.append(f"{ts(t)} Traceback (most recent call last):")
lines.append(f"{ts(t)}   File \"/app/db.py\", line 7, in connect")
lines.append(f"{ts(t)}     conn = psycopg.connect(\"postgres://checkout:pg-S3cr3t-2026@db.shop.svc:5432/orders\")")
lines.append(f"{ts(t)} psycopg.OperationalError: connection to postgres://checkout:pg-S3cr3t-2026@db.shop.svc:5432/orders failed")
lines.append(f"{ts(t+1)} \x1b[31mERROR\x1b[0m \x1b]0;pwned\x07terminal escape test token=Esc4p3dT0ken99")
open("clusters/lab/logs/shop/checkout-5d8f7c9b6d-x7k2p/app.log", "w").write("\n".join(lines) + "\n")

def y(v):
    return json.dumps(v)

env_vals = [p for (sid, p, _) in S if sid in ("postgres-url","stripe","openai","azure-storage","mysql-dsn","slack-webhook","sentry","jwt")]
env = [{"name": f"CFG_{i}", "value": v} for i, v in enumerate(env_vals)]
env += [{"name": "DD_API_KEY", "value": "0123456789abcdef0123456789abcdef"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}},
        {"name": "PLAIN_SETTING", "value": "pool=20"}]
ann = {f"shop.example/note-{i}": p for i, (sid, p, _) in enumerate(S) if sid in ("aws-key-id","github-pat","gcp-sa-json","azure-client-secret","vault","docker-auth","openssh-key","adonet")}
ann["shop.example/db-password"] = "plaintextpw-in-annotation"
meta = lambda name, ns=None, **kw: {k: v for k, v in {"name": name, "namespace": ns, **kw}.items() if v is not None}
container = {"name": "app", "image": "ghcr.io/shop/checkout:v2.3.1", "env": env,
             "envFrom": [{"secretRef": {"name": "checkout-env"}}],
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}
objs = [
 {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("shop")},
 {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("medic")},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta("medic-reader"),
  "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta("medic-reader"),
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "medic-reader"},
  "subjects": [{"kind": "ServiceAccount", "name": "medic", "namespace": "medic"}]},
 {"apiVersion": "v1", "kind": "Secret", "metadata": meta("db-creds", "shop"), "type": "Opaque",
  "data": {"password": base64.b64encode(b"DbSecretValueNeverShown").decode()}, "stringData": {"extra": "StringDataNeverShown"}},
 {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("checkout", "shop", annotations=ann, labels={"app": "checkout"}),
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}},
           "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [container]}}},
  "status": {"replicas": 1, "readyReplicas": 0, "updatedReplicas": 1, "availableReplicas": 0}},
 {"apiVersion": "v1", "kind": "Pod", "metadata": meta("checkout-5d8f7c9b6d-x7k2p", "shop", annotations=ann, labels={"app": "checkout"}),
  "spec": {"nodeName": "node-1", "containers": [container]},
  "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "ghcr.io/shop/checkout:v2.3.1", "imageID": "", "ready": False, "restartCount": 4,
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting; last error: " + S[21][1]}},
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "fatal: " + S[8][1], "finishedAt": "2026-07-01T10:05:00Z"}}}]}},
 {"apiVersion": "v1", "kind": "Node", "metadata": meta("node-1"), "status": {"conditions": [{"type": "Ready", "status": "True"}],
  "capacity": {"cpu": "4", "memory": "16Gi"}, "allocatable": {"cpu": "4", "memory": "16Gi"}}},
]
for i, (sid, p, _) in enumerate(S):
    if i % 4 == 0:
        objs.append({"apiVersion": "v1", "kind": "Event", "metadata": meta(f"checkout.{i:04x}", "shop"),
          "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "checkout-5d8f7c9b6d-x7k2p", "namespace": "shop"},
          "reason": "Failed", "type": "Warning", "count": i + 1,
          "firstTimestamp": "2026-07-01T10:00:00Z", "lastTimestamp": "2026-07-01T10:05:00Z",
          "message": f"Error: config check {sid} failed with {p}", "source": {"component": "kubelet"}})
import yaml
open("clusters/lab/objects/objects.yaml", "w").write(yaml.safe_dump_all(objs, sort_keys=False))
open("scenario.yaml", "w").write("""version: 1
title: "Credentials everywhere (redaction corpus)"
description: |
  medic-tools' redaction test bundle: 46 fake but realistically formatted credentials are
  planted in a container log, env values, annotations, container state messages and events.
  No tool output may contain any of them (tests/redaction.rs, corpus.json).
now: "2026-07-01T10:10:00Z"
clusters:
  - name: lab
start:
  question: "Why does checkout crash in namespace shop?"
identities:
  - { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
""")
