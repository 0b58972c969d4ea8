// A real OpenID provider for the console's browser tests: panva/oidc-provider (OpenID
// certified), on loopback, with one confidential client (PKCE required) and a few
// accounts whose groups the console maps to roles. Its development login pages (any
// password) stand in for the organisation's sign-in page.
// Usage: PORT=... REDIRECT_URI=... node provider.mjs   (prints "listening <issuer>")
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = {
  olivia: { sub: "olivia", preferred_username: "olivia", name: "Olivia Oidc", groups: ["compliance"], tenant: "acme" },
  victor: { sub: "victor", preferred_username: "victor", name: "Victor Viewer", groups: ["acme-readers"], tenant: "acme" },
  nora: { sub: "nora", preferred_username: "nora", name: "Nora Nogroup", groups: ["marketing"] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: "console",
    client_secret: process.env.CLIENT_SECRET || "console-test-secret",
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  scopes: ["openid", "profile", "groups"],
  claims: { openid: ["sub"], profile: ["name", "preferred_username", "tenant"], groups: ["groups"] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["appliance-console-test-only"] },
  findAccount: async (ctx, id) => accounts[id] ? { accountId: id, claims: async () => accounts[id] } : undefined,
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`listening ${issuer}`));
