// Starts GOV.UK Frontend's components (error summary focus, radios, notification banners).
import { initAll } from "../../vendor/govuk-frontend/govuk-frontend.min.js";

initAll();
