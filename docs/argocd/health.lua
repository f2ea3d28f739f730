-- Argo CD health check for FleetPipeline (fleetops.dev/v1alpha1).
--
-- Install: the argocd-cm key resource.customizations.health.fleetops.dev_FleetPipeline
-- (docs/argocd/argocd-cm-snippet.yaml embeds this file verbatim; a test checks it).
-- Tested under github.com/yuin/gopher-lua against statuses captured from a real
-- kube-apiserver (tests/argocd).
--
-- Argo CD runs custom health scripts with only Lua's base, table and package
-- libraries (and a reduced os): there is no `string` library, so this script
-- uses nothing but `..`, tostring, type and ipairs.
--
--   no status / no conditions                       -> Progressing
--   Degraded=True for the current generation        -> Degraded
--   Ready=False, failure reason, current generation  -> Degraded
--   status.observedGeneration < metadata.generation  -> Progressing
--   Ready=True, reason Suspended                     -> Suspended
--   Ready=True                                       -> Healthy
--   Progressing=True / anything else                 -> Progressing
--
-- A failure is judged before observedGeneration on purpose: the operator
-- leaves status.observedGeneration at the last generation it fully
-- reconciled, and records a failure with the generation it failed on in the
-- conditions' own observedGeneration. A pipeline that never reconciled
-- (a Secret missing from the start) has no status.observedGeneration at all
-- and must still show Degraded, not Progressing forever.

local hs = {}

-- Ready=False reasons that need a person (the operator's error categories).
local failureReasons = {
  SecretMissing = true,
  InvalidSpec = true,
  ApplyFailed = true,
  MissingMetadata = true,
  CredentialsConflict = true,
  CleanupFailed = true,
}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

local function describe(c)
  local text = tostring(c.reason or "")
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. tostring(c.message)
  end
  return text
end

local function waitingText()
  if generation == nil then
    return "waiting for the controller to observe the pipeline"
  end
  return "waiting for the controller to observe generation " .. tostring(generation)
end

local function findCondition(conditionType)
  if status == nil or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- Whether a condition was written for the spec as it is now.
local function isCurrent(c)
  if generation == nil then
    return true
  end
  local seen = c.observedGeneration
  if seen == nil and status ~= nil then
    seen = status.observedGeneration
  end
  return seen ~= nil and seen >= generation
end

local ready = findCondition("Ready")
local degraded = findCondition("Degraded")
local progressing = findCondition("Progressing")

if ready == nil and degraded == nil and progressing == nil then
  hs.status = "Progressing"
  hs.message = waitingText() .. " (no status yet)"
  return hs
end

-- A failure found on the current spec.
if degraded ~= nil and degraded.status == "True" and isCurrent(degraded) then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
if ready ~= nil and ready.status == "False" and failureReasons[ready.reason] and isCurrent(ready) then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

-- The spec changed since the controller last looked.
local observed = nil
if status ~= nil then
  observed = status.observedGeneration
end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  local msg = waitingText()
  if observed ~= nil then
    msg = msg .. " (observed: " .. tostring(observed) .. ")"
  end
  if ready ~= nil and ready.status == "False" then
    msg = msg .. "; last result: " .. describe(ready)
  end
  hs.message = msg
  return hs
end

if ready ~= nil and ready.status == "True" and isCurrent(ready) then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if progressing ~= nil and progressing.status == "True" then
  hs.message = describe(progressing)
elseif ready ~= nil then
  hs.message = "Ready is " .. tostring(ready.status) .. ": " .. describe(ready)
else
  hs.message = "waiting for the Ready condition"
end
return hs
