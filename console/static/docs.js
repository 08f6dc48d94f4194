// Swagger UI on the served OpenAPI document. A signed-in console session is accepted by the API too:
// its CSRF token goes with every request "Try it out" makes.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  requestInterceptor: (request) => {
    request.headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]').content;
    return request;
  },
});
