"""The Content-Security-Policy production sends (django-csp 4; docs/security.md#content-security-policy).

Scripts only from our own origin: the admin, the portal and Swagger UI (the sidecar's files, its
settings script served separately by ``SpectacularSwaggerSplitView``) load every script from a
file. The two inline handlers left, the quote page's "Print" link and the portal's customer
switcher (submits on change), are allowed by their hashes ('unsafe-hashes' admits those exact
event handlers only, never other inline script). Styles allow
'unsafe-inline': the admin pages and Swagger UI set ``style`` attributes and a few ``<style>``
blocks; CSS cannot run code. Nothing is framed, nothing is fetched from elsewhere.
"""

from csp.constants import NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE

# sha256 of ``window.print();return false;`` (templates/admin/contracts/contract/quote.html)
PRINT_LINK_HASH = "'sha256-6AB1bZxMK57UHfDO+hPLrNnVRR5+esGUVOmLSacvYf4='"
# sha256 of ``this.form.submit()`` (templates/portal/base.html, the customer switcher)
SUBMIT_ON_CHANGE_HASH = "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_HASHES, PRINT_LINK_HASH, SUBMIT_ON_CHANGE_HASH],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, "https://checkout.stripe.com"],
        "frame-ancestors": [NONE],
    }
}
