# With a domain: an external HTTPS load balancer in front of Query, with Cloud CDN for the page and
# the immutable map files (Query sends their cache headers), a Google-managed certificate, and a
# Cloud Armor policy that limits each client IP. Query's ingress then admits only this load
# balancer (functions.tf). Plain HTTP is redirected to HTTPS.

resource "google_compute_global_address" "site" {
  count = local.with_domain ? 1 : 0

  name       = "${local.prefix}-site"
  depends_on = [google_project_service.apis]
}

resource "google_compute_region_network_endpoint_group" "query" {
  count = local.with_domain ? 1 : 0

  name                  = "${local.prefix}-query"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # A 2nd gen function is a Cloud Run service, which the NEG addresses directly.
  cloud_run {
    service = google_cloudfunctions2_function.query.service_config[0].service
  }
}

resource "google_compute_security_policy" "site" {
  count = local.with_domain ? 1 : 0

  name        = "${local.prefix}-site"
  description = "Per-client rate limit in front of text2brain's Query function."

  rule {
    action      = "throttle"
    priority    = 1000
    description = "At most armor_requests_per_minute requests a minute from one client IP; 429 above."

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }

    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"

      rate_limit_threshold {
        count        = var.armor_requests_per_minute
        interval_sec = 60
      }
    }
  }

  rule {
    action      = "allow"
    priority    = 2147483647
    description = "Everything else."

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_compute_backend_service" "query" {
  count = local.with_domain ? 1 : 0

  name                  = "${local.prefix}-query"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = google_compute_security_policy.site[0].id
  enable_cdn            = true

  backend {
    group = google_compute_region_network_endpoint_group.query[0].id
  }

  cdn_policy {
    # Cache only what Query marks cacheable (the page, results under their id, the map files);
    # pending answers and errors carry no-store or short lifetimes.
    cache_mode       = "USE_ORIGIN_HEADERS"
    negative_caching = false
    # A query string is part of the key: /api/v1/maps?q=… answers depend on it.
    cache_key_policy {
      include_host         = true
      include_protocol     = true
      include_query_string = true
    }
  }

  log_config {
    enable      = true
    sample_rate = 0.1
  }
}

resource "google_compute_url_map" "site" {
  count = local.with_domain ? 1 : 0

  name            = "${local.prefix}-site"
  default_service = google_compute_backend_service.query[0].id
}

resource "google_compute_managed_ssl_certificate" "site" {
  count = local.with_domain ? 1 : 0

  name = "${local.prefix}-site"

  managed {
    domains = [var.domain]
  }

  depends_on = [google_project_service.apis]
}

resource "google_compute_target_https_proxy" "site" {
  count = local.with_domain ? 1 : 0

  name             = "${local.prefix}-site"
  url_map          = google_compute_url_map.site[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.site[0].id]
}

resource "google_compute_global_forwarding_rule" "https" {
  count = local.with_domain ? 1 : 0

  name                  = "${local.prefix}-https"
  target                = google_compute_target_https_proxy.site[0].id
  ip_address            = google_compute_global_address.site[0].address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# http://DOMAIN/… → https://DOMAIN/…
resource "google_compute_url_map" "redirect" {
  count = local.with_domain ? 1 : 0

  name = "${local.prefix}-redirect"

  default_url_redirect {
    https_redirect         = true
    strip_query            = false
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  count = local.with_domain ? 1 : 0

  name    = "${local.prefix}-redirect"
  url_map = google_compute_url_map.redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count = local.with_domain ? 1 : 0

  name                  = "${local.prefix}-http"
  target                = google_compute_target_http_proxy.redirect[0].id
  ip_address            = google_compute_global_address.site[0].address
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
