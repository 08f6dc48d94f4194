// Swagger UI on the served OpenAPI document. A signed-in console session is accepted by the API too:
// its CSRF token goes with every request "Try it out" makes.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/docs/openapi-3.0.json",  // the served /openapi.json, as 3.0 (console/openapi30.py)
  dom_id: "#swagger-ui",
  deepLinking: true,
  requestInterceptor: (request) => {
    request.headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]').content;
    return request;
  },
});
